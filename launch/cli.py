"""``minwa SUB ...``: dispatches to the ``main(argv) -> int`` of each sub-command's module."""
import importlib
import sys

from minwa.errors import MinwaError
from minwa.failure.abort import end_job_for_error

#: sub-command -> (module, one-line help)
COMMANDS = {
    "train": ("minwa.launch.train_command", "train a job (YAML or Caffe prototxt) on 1 or N ranks"),
    "netinfo": ("minwa.launch.netinfo_command", "print each layer's output shape, parameters and FLOPs"),
    "pack": ("minwa.datasets.pack", "convert a data source into one HDF5 pack"),
    "augment": ("minwa.augment.preview", "augmentation pictures: minwa augment preview IMAGE --out grid.png"),
    "convert": ("minwa.launch.convert_command", "convert a Caffe .prototxt net (and solver) to YAML"),
    "plot": ("minwa.launch.plot_command", "draw loss, accuracy and lr curves of a run to PNG"),
    "plan": ("minwa.launch.plan_command", "predict data vs model-data parallel step times for N = 1..gpus"),
    "pipeline": ("minwa.launch.pipeline_command", "split inference over TCP: split, serve, run, plan"),
    "eval": ("minwa.launch.eval_command", "multi-scale, flip and ensemble evaluation of trained models"),
}


def usage():
    lines = ["usage: minwa COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "run 'minwa COMMAND --help' for a command's options"]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        import minwa  # noqa: PLC0415

        print(f"minwa {minwa.__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"minwa: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except MinwaError as exc:
        end_job_for_error(exc)  # several MPI ranks: ends them all, with the message once
        print(f"minwa {name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minwa {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        end_job_for_error(exc)
        raise


if __name__ == "__main__":
    sys.exit(main())
