"""`moderation score`: score a CSV or JSONL backlog in streaming batches, or a few texts given inline."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from models.errors import InputDataError
from models.labels import validate_labels
from models.scoring import Model

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES


def _check_input(path: Path) -> None:
    if not path.exists():
        raise InputDataError(f"input file {path} does not exist")
    if not path.is_file():
        raise InputDataError(f"input {path} is not a file")
    if path.stat().st_size == 0:
        raise InputDataError(f"input file {path} is empty")


def _csv_rows(path: Path, column: str) -> tuple[list[str], Iterator[dict[str, str]]]:
    fh = path.open(encoding="utf-8", newline="")
    reader = csv.DictReader(fh)
    try:
        header = reader.fieldnames
    except UnicodeDecodeError:
        fh.close()
        raise InputDataError(f"{path} is not UTF-8 text") from None
    except csv.Error as exc:
        fh.close()
        raise InputDataError(f"{path} is not valid CSV ({exc})") from None
    if not header:
        fh.close()
        raise InputDataError(f"{path} has no header row")
    if column not in header:
        fh.close()
        raise InputDataError(f"{path} has no column {column!r}; columns: {', '.join(header)}")

    def rows() -> Iterator[dict[str, str]]:
        with fh:
            for line_no, row in enumerate(reader, start=2):
                if None in row:
                    raise InputDataError(f"{path}, row {line_no}: more fields than the header")
                yield row

    return list(header), rows()


def _jsonl_rows(path: Path, column: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputDataError(f"{path}, line {line_no}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputDataError(f"{path}, line {line_no}: expected a JSON object")
            if column not in row:
                raise InputDataError(f"{path}, line {line_no}: no field {column!r}")
            if row[column] is not None and not isinstance(row[column], str):
                raise InputDataError(f"{path}, line {line_no}: field {column!r} is not a string")
            yield row


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_file(
    model: Model,
    input_path: Path,
    output_path: Path,
    text_column: str,
    *,
    labels: Sequence[str] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> int:
    """Score every row of a CSV or JSONL file into `output_path`; returns the number of rows.

    The output is written to a temporary file beside the target and renamed at the end, so a
    failure never leaves a partial output file.
    """
    _check_input(input_path)
    out_labels = validate_labels(labels) if labels else list(model.labels)
    columns = [f"score_{name}" for name in out_labels]
    index = [model.labels.index(name) for name in out_labels]
    jsonl = _is_jsonl(input_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", dir=output_path.parent)
    tmp = Path(tmp_name)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            if jsonl:
                rows: Iterator[Any] = _jsonl_rows(input_path, text_column)
                writer: Any = None
            else:
                header, rows = _csv_rows(input_path, text_column)
                writer = csv.DictWriter(out, fieldnames=[*header, *columns, "flagged"])
                writer.writeheader()
            bar = tqdm(rows, unit=" rows", disable=not progress, file=sys.stderr, mininterval=0.5)
            for batch in _batches(iter(bar), batch_size):
                texts = [str(row.get(text_column) or "") for row in batch]
                scores = model.score(texts)
                flags = model.flags(scores, texts)
                for row, text, srow, frow in zip(batch, texts, scores, flags, strict=True):
                    empty = not text.strip()
                    for col, j in zip(columns, index, strict=True):
                        row[col] = None if empty else round(float(srow[j]), 6)
                    flagged = [] if empty else [model.labels[j] for j in index if frow[j]]
                    row["flagged"] = ";".join(flagged)
                    if jsonl:
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    else:
                        writer.writerow({k: "" if v is None else v for k, v in row.items()})
                count += len(batch)
            bar.close()
        if count == 0:
            raise InputDataError(f"{input_path} has no rows to score")
        tmp.replace(output_path)
    except UnicodeDecodeError:
        tmp.unlink(missing_ok=True)
        raise InputDataError(f"{input_path} is not UTF-8 text") from None
    except csv.Error as exc:
        tmp.unlink(missing_ok=True)
        raise InputDataError(f"{input_path} is not valid CSV ({exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def score_texts(model: Model, texts: Sequence[str], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """`/v1/moderate`'s answer for `texts`, without a site policy's decision: scores, flagged labels
    and their spans, from the model the service would load. `labels` keeps only those labels."""
    for i, text in enumerate(texts, start=1):
        if not text.strip():
            raise InputDataError(f"--text number {i} is empty")
    keep = validate_labels(labels) if labels else list(model.labels)
    results = []
    for prediction in model.predict(list(texts), spans=True):
        results.append(
            {
                "scores": {name: round(prediction.scores[name], 6) for name in keep},
                "flagged": [name for name in prediction.flagged if name in keep],
                "spans": [
                    {"label": s.label, "start": s.start, "end": s.end, "score": round(s.score, 6)}
                    for s in prediction.spans
                    if s.label in keep
                ],
            }
        )
    return {"model": model.id, "results": results}
