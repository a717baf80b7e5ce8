"""The learned part of the matcher: which entry a message is like, from the content's examples.

Keywords say what staff thought of; people write what they write. So each entry's
keywords, title and example messages train a multinomial logistic regression over
features that survive the way people type: word stems keyed by sound ("nesesito" =
"necesito"), pairs of neighbouring words ("se vencio", "para ninos"), and character
n-grams of each word, which still match when a word is misspelt or carries a Mayan
prefix. Messages that are none of our topics train a class of their own (`NONE`), so
the model can say that a message looks like nothing we answer.

Trained at content load on numpy and scipy.sparse with a small L-BFGS of our own: a
few hundred milliseconds, and no scikit-learn in the server (it would cost 80 MB of
memory for one fit; scipy's L-BFGS-B, tried, takes three times as long on this problem,
as it works in float64 over a million weights). Prediction is a dot product over the
message's few features.
Knows nothing of content files, channels or the dialogue: it learns (text, label) pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np
import scipy.sparse as sparse

__all__ = ["NONE", "TextModel", "features"]

NONE = "-"  # the label of messages that are none of the entries
_CHAR_SIZES = (3, 4, 5)
_L2 = 1e-4  # regularisation: smaller fits the examples closer, larger generalises more bluntly
_MAX_ITERATIONS = 300
_TOLERANCE = 3e-4  # largest gradient component at which the fit stops
_MIN_SAMPLES = 2  # a feature seen in fewer samples is left out: it would only memorise one


def features(keys: Sequence[str], informative: Sequence[bool], sounds: Sequence[str]) -> Counter[str]:
    """The features of one message, from its words already normalised by the caller.

    `keys` are the words' matching keys (stemmed, by sound), `informative` says which are
    not filler words, `sounds` are the words spelt by sound (for the character n-grams).
    """
    grams: list[str] = []
    for key, telling, spelt in zip(keys, informative, sounds, strict=True):
        if telling:
            grams.append("w" + key)
            grams.extend(_letters(spelt))
    grams.extend(f"b{first} {second}" for first, second in pairwise(keys))
    return Counter(grams)


@lru_cache(maxsize=65536)
def _letters(spelt: str) -> tuple[str, ...]:
    """The character n-grams of one word, padded: the same words recur in every message."""
    padded = f"<{spelt}>"
    return tuple("c" + padded[start : start + size] for size in _CHAR_SIZES for start in range(len(padded) - size + 1))


@dataclass(frozen=True)
class TextModel:
    labels: tuple[str, ...]
    vocabulary: dict[str, int]  # feature → row of `weights`
    idf: list[float]  # per feature
    weights: np.ndarray  # features × labels
    bias: np.ndarray  # per label

    @classmethod
    def train(cls, samples: Sequence[tuple[Counter[str], str]], *, l2: float = _L2) -> TextModel:
        """Fit on (features, label) pairs; every label must have at least one sample."""
        labels = tuple(sorted({label for _, label in samples}))
        index = {label: i for i, label in enumerate(labels)}
        document_frequency: Counter[str] = Counter()
        for found, _ in samples:
            document_frequency.update(found.keys())
        document_frequency = Counter({f: n for f, n in document_frequency.items() if n >= _MIN_SAMPLES})
        vocabulary = {feature: i for i, feature in enumerate(sorted(document_frequency))}
        total = len(samples)
        idf = np.array(
            [math.log((total + 1) / (document_frequency[f] + 1)) + 1.0 for f in sorted(document_frequency)],
            dtype=np.float64,
        )
        # the samples' sublinear tf-idf, L2-normalised per row, in numpy (one pass in Python)
        rows, columns, counts = [], [], []
        for row, (found, _) in enumerate(samples):
            for feature, count in found.items():
                column = vocabulary.get(feature)
                if column is not None:
                    rows.append(row)
                    columns.append(column)
                    counts.append(count)
        column_ids = np.array(columns, dtype=np.int64)
        values = (1.0 + np.log(np.array(counts, dtype=np.float64))) * idf[column_ids]
        matrix = sparse.csr_matrix((values, (rows, column_ids)), shape=(total, len(vocabulary)))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        matrix = sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix, dtype=np.float32)
        targets = np.array([index[label] for _, label in samples])
        weights, bias = _fit(matrix, targets, len(labels), l2)
        return cls(labels, vocabulary, idf.tolist(), weights.astype(np.float32), bias.astype(np.float32))

    def probabilities(self, found: Counter[str]) -> np.ndarray | None:
        """P(label | message) in the order of `labels`; None when no feature is known."""
        ids, weights = self._vector(found)
        if not ids:
            return None
        scores = np.asarray(weights, dtype=np.float32) @ self.weights[ids] + self.bias
        scores -= scores.max()
        exp = np.exp(scores)
        result: np.ndarray = exp / exp.sum()
        return result

    def _vector(self, found: Counter[str]) -> tuple[list[int], list[float]]:
        """Sublinear tf-idf of the known features, L2-normalised."""
        ids: list[int] = []
        weights: list[float] = []
        idf = self.idf
        for feature, count in found.items():
            column = self.vocabulary.get(feature)
            if column is not None:
                ids.append(column)
                weights.append((1.0 + math.log(count)) * idf[column])
        norm = math.sqrt(sum(w * w for w in weights))
        return ids, [w / norm for w in weights] if norm else weights


def _fit(matrix: sparse.csr_matrix, targets: np.ndarray, classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with an L2 penalty on the weights, by L-BFGS."""
    samples, width = matrix.shape
    transposed = matrix.T.tocsr()
    onehot = np.zeros((samples, classes), dtype=np.float32)
    onehot[np.arange(samples), targets] = 1.0
    size = width * classes

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        weights = flat[:size].reshape(width, classes)
        scores = matrix @ weights + flat[size:]
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        total = exp.sum(axis=1, keepdims=True)
        log_p = scores[np.arange(samples), targets] - np.log(total[:, 0])
        loss = -log_p.mean() + 0.5 * l2 * float((weights * weights).sum())
        error = (exp / total - onehot) / samples
        gradient = np.concatenate([(transposed @ error + l2 * weights).ravel(), error.sum(axis=0)])
        return float(loss), gradient

    flat = _lbfgs(loss_and_gradient, np.zeros(size + classes, dtype=np.float32))
    return flat[:size].reshape(width, classes), flat[size:]


def _lbfgs(
    function: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray, memory: int = 5
) -> np.ndarray:
    """Minimise a smooth convex function: limited-memory BFGS with a backtracking line search."""
    point = start
    value, gradient = function(point)
    steps: list[tuple[np.ndarray, np.ndarray, float]] = []  # (s, y, 1 / y·s)
    for _ in range(_MAX_ITERATIONS):
        if float(np.abs(gradient).max()) < _TOLERANCE:
            break
        direction = -gradient
        alphas = []
        for s, y, rho in reversed(steps):
            alpha = rho * float(s @ direction)
            direction = direction - alpha * y
            alphas.append(alpha)
        if steps:
            s, y, _ = steps[-1]
            direction = direction * (float(s @ y) / float(y @ y))
        for (s, y, rho), alpha in zip(steps, reversed(alphas), strict=True):
            beta = rho * float(y @ direction)
            direction = direction + s * (alpha - beta)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction: start the memory again
            steps.clear()
            direction, slope = -gradient, -float(gradient @ gradient)
        step = 1.0
        while True:
            candidate = point + step * direction
            new_value, new_gradient = function(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s, y = candidate - point, new_gradient - gradient
        ys = float(y @ s)
        if ys > 1e-12:
            steps.append((s, y, 1.0 / ys))
            if len(steps) > memory:
                steps.pop(0)
        point, value, gradient = candidate, new_value, new_gradient
    return point
