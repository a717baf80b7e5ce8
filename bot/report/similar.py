"""Group not-sure questions that say the same thing, so staff see what content is missing.

Questions are compared in their folded form (no case, accents, punctuation; chat
abbreviations expanded; placeholders such as [nombre] kept whole), identical ones first,
then similar ones (rapidfuzz ratio ≥ `cutoff`) around the most asked. A group is shown
only when at least `k` distinct users wrote it, and it is shown by the wording its
members share: the most asked form, where each word written by fewer than `k` distinct
people becomes "[…]". Five people writing the same sentence with five surnames show the
sentence, never a surname.

Comparing every question with every other is quadratic. Each question is compared only
with groups that share one of its three rarest word prefixes, and with at most 256 of
them (the biggest and the newest under each prefix), which keeps a report of 150,000
questions to seconds. The grouping is approximate by design: a question made only of
common words may miss a small group it would have joined. Knows nothing of storage.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from bot.normalize import STOPWORDS, words

__all__ = ["QueryGroup", "group_queries"]

_PROBES = 3  # rarest word prefixes a question is indexed and looked up by
_PREFIX = 4  # letters of a word that form its prefix: typos further in still meet
_GREETINGS = frozenset("hola holi buenas buenos buen dia dias tardes noches disculpe disculpa saludos oiga ey hey".split())
_CANDIDATES = 256  # groups a question is compared with, at most: the biggest and the newest
_PLACEHOLDER = re.compile(r"(\[[^\]\s]{1,12}\])")  # what bot.scrub put in: [nombre], [teléfono]
GAP = "[…]"  # where the members of a group wrote different words


@dataclass(frozen=True)
class QueryGroup:
    text: str  # the most asked folded question, words fewer than k people wrote as GAP
    users: int  # distinct pseudonymous users
    messages: int
    variants: int  # distinct folded questions in the group


@dataclass
class _Exact:
    users: set[str] = field(default_factory=set)
    messages: int = 0


@dataclass
class _Cluster:
    leader: str
    users: set[str]
    messages: int
    members: list[str] = field(default_factory=list)  # the folded questions grouped here

    @property
    def variants(self) -> int:
        return len(self.members)


def group_queries(
    rows: Iterable[tuple[str, str]],
    *,
    k: int,
    cutoff: float = 85.0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[QueryGroup], int]:
    """Groups of (text, user key) rows written by ≥ k users, most users first; and how many groups were smaller."""
    exact: dict[str, _Exact] = defaultdict(_Exact)
    for text, user in rows:
        key = _key(text)
        if key:
            found = exact[key]
            found.users.add(user)
            found.messages += 1
    keys = sorted(exact, key=lambda key: (-len(exact[key].users), -exact[key].messages, key))
    probes = {key: _prefixes(key) for key in keys}
    frequency = Counter(p for prefixes in probes.values() for p in prefixes)

    clusters: list[_Cluster] = []
    leaders: list[str] = []
    index: dict[str, list[int]] = defaultdict(list)
    for done, key in enumerate(keys, start=1):
        mine = sorted(probes[key], key=lambda p: (frequency[p], p))[:_PROBES]
        candidates = _candidates([index[p] for p in mine if p in index])
        best = None
        if candidates:
            best = process.extractOne(key, [leaders[i] for i in candidates], scorer=fuzz.ratio, score_cutoff=cutoff)
        found = exact[key]
        if best is not None:
            cluster = clusters[candidates[best[2]]]
            cluster.users |= found.users
            cluster.messages += found.messages
            cluster.members.append(key)
        else:
            for p in mine:
                index[p].append(len(clusters))
            clusters.append(_Cluster(key, set(found.users), found.messages, [key]))
            leaders.append(key)
        if progress is not None and (done % 5000 == 0 or done == len(keys)):
            progress(done, len(keys))

    shown = [
        QueryGroup(_shared_wording(c, exact, k), len(c.users), c.messages, c.variants)
        for c in clusters
        if len(c.users) >= k
    ]
    shown.sort(key=lambda g: (-g.users, -g.messages, g.text))
    return shown, len(clusters) - len(shown)


def _shared_wording(cluster: _Cluster, exact: dict[str, _Exact], k: int) -> str:
    """The leader's words that at least k distinct people of the group wrote; the others as one GAP per stretch."""
    writers: dict[str, set[str]] = defaultdict(set)
    for key in cluster.members:
        for word in set(key.split()):
            writers[word] |= exact[key].users
    shown: list[str] = []
    for word in cluster.leader.split():
        token = word if len(writers[word]) >= k else GAP
        if not (token == GAP and shown and shown[-1] == GAP):
            shown.append(token)
    return " ".join(shown)


def _key(text: str) -> str:
    """The folded question without the greeting in front: "hola, buenas tardes, ..." is not the question."""
    found = [
        word
        for part in _PLACEHOLDER.split(text)
        for word in ([part] if _PLACEHOLDER.fullmatch(part) else words(part))
    ]
    start = 0
    while start < len(found) - 1 and found[start] in _GREETINGS:
        start += 1
    return " ".join(found[start:])


def _candidates(postings: list[list[int]]) -> list[int]:
    """Groups under the rarest prefix first; from a long list, its first (biggest) and last (newest)."""
    found: dict[int, None] = {}
    for posting in postings:
        room = _CANDIDATES - len(found)
        if room <= 0:
            break
        if len(posting) > room:
            posting = posting[: room // 2] + posting[len(posting) - (room - room // 2) :]
        found.update(dict.fromkeys(posting))
    return list(found)


def _prefixes(key: str) -> set[str]:
    """The prefixes of a question's content words; the whole question when it has none."""
    found = {w[:_PREFIX] for w in key.split() if len(w) > 2 and w not in STOPWORDS}
    return found or {key}
