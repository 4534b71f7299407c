"""Progress: rank 0's one-line progress bar and periodic log lines."""
import sys
import time


def _duration(seconds):
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Shows step, images/s, loss, lr and ETA; redraws in place on a terminal, prints lines otherwise."""

    def __init__(self, total_steps, start_step=0, enabled=True, stream=None, every=1):
        self.total = total_steps
        self.start_step = start_step
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.every = max(1, int(every))
        self.started = time.perf_counter()
        self.interactive = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_width = 0

    def update(self, step, loss, lr, images_per_s):
        if not self.enabled:
            return
        done = step - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = elapsed / done * (self.total - step) if done else 0.0
        fraction = step / self.total if self.total else 1.0
        bar = "#" * int(fraction * 20)
        line = (f"[{bar:<20}] {step}/{self.total} | {images_per_s:8.1f} img/s | loss {loss:.4f} | "
                f"lr {lr:.3g} | eta {_duration(eta)}")
        if self.interactive:
            pad = " " * max(0, self._last_width - len(line))
            self.stream.write("\r" + line + pad)
            self._last_width = len(line)
            self.stream.flush()
        elif step % self.every == 0 or step == self.total:
            self.stream.write(line + "\n")
            self.stream.flush()

    def message(self, text):
        if not self.enabled:
            return
        if self.interactive and self._last_width:
            self.stream.write("\n")
            self._last_width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        if self.interactive and self._last_width:
            self.stream.write("\n")
            self.stream.flush()
