"""Peak resident memory of this process, sampled in a background thread while a model runs."""

from __future__ import annotations

import threading

import psutil


class RSSSampler:
    """Samples RSS every ``interval_s``; ``peak`` is the highest reading since ``start``."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self._proc = psutil.Process()
        self.before = self._proc.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> int:
        rss = self._proc.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss

    def start(self) -> RSSSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
