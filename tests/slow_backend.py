"""A backend factory for the Ray tests: the registry's fake backend, slowed down by a fixed
sleep per request so a node can be killed while it answers. Imported by the Ray workers
(tests/ray_cluster.py puts this checkout on their PYTHONPATH)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from quantmatrix.backends import fake
from quantmatrix.backends.base import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

DELAY_S = 0.15


class SlowFake(fake.FakeBackend):
    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        for result in super().generate(requests):
            time.sleep(DELAY_S)
            yield result


def create(variant: Variant, spec: ModelSpec, study: Study) -> SlowFake:
    salt = variant.id
    return SlowFake(fake.hashed_letter_script(salt), letters=fake.hashed_letter_probs(salt))
