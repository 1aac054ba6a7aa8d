"""Where an interrupted replay stopped, so ``spread replay --resume`` sends no duplicates.

A replay's events come out of :func:`pipeline.replay.selected` in a deterministic order for
the same files and options, so "how many events the broker acknowledged" is a complete
position. It is written (atomically) after every acknowledged batch to
``.spread-replay/<key>.json`` in the working directory, where the key digests the files and
the options that decide the order; the files' sizes and modification times are stored too,
and a resume refuses files that changed since. A replay that finishes removes its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.formats.native import STDIN, FormatError

DIRECTORY = Path(".spread-replay")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    files: list[list[Any]]  # [absolute path, size, mtime_ns]

    @classmethod
    def for_replay(
        cls, paths: Sequence[str | Path], options: dict[str, Any], directory: Path = DIRECTORY
    ) -> Checkpoint:
        if any(str(p) == STDIN for p in paths):
            raise FormatError("--resume cannot resume standard input: replay a file")
        files = []
        for p in paths:
            try:
                st = os.stat(p)
            except OSError as exc:
                raise FormatError(f"cannot read {p}: {exc.strerror or exc}") from None
            files.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
        key = json.dumps([[f[0] for f in files], options], sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cls(directory / f"{digest}.json", files)

    def load(self) -> int:
        """Events already acknowledged (0 when there is nothing to resume)."""
        try:
            saved = json.loads(self.path.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise FormatError(f"unreadable checkpoint {self.path}: {exc}") from None
        if saved.get("files") != self.files:
            raise FormatError(
                "the files changed since the interrupted replay: start over without --resume"
            )
        return int(saved["acked"])

    def save(self, acked: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"acked": acked, "files": self.files}))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def options_of(selection: Any) -> dict[str, Any]:
    """The options that decide which events come out, in which order."""
    options = asdict(selection)
    options.pop("strict", None)  # stops a replay, does not change what it sends
    options["hashtags"] = sorted(options["hashtags"])
    return options
