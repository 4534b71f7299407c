"""Command line: the minwa sub-commands and minwa-launch, installed as minwa.launch."""
