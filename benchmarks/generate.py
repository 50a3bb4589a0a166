"""Deterministic generator of realistic audformat databases for the benchmarks.

Every shape is generated from ``(shape, scale, seed)`` alone
and cached under ``benchmarks/cache/<key>/db``,
so repeated benchmark runs reuse it.
``benchmarks/cache/<key>/info.json`` is written last
and marks a complete database;
it also records file counts, bytes, generation time
and the deflate (zlib level 6) ratio of a sample of the media.

Run it alone to (re)generate shapes::

    python benchmarks/generate.py --shapes wav --scale 1.0

"""

import argparse
from collections.abc import Callable
import concurrent.futures
import dataclasses
import io
import json
import os
from pathlib import Path
import shutil
import time
import zlib

import numpy as np
import soundfile
import synth

GENERATOR_VERSION = 1
CACHE_ROOT = Path(__file__).resolve().parent / "cache"
SPEAKERS = 40
ZLIB_SAMPLE_FILES = 200
WORDS = (
    "the a of and to in is you that it he was for on are as with his they at be "
    "this have from or one had by word but not what all were we when your can said "
    "there use an each which she do how their if will up other about out many then "
    "them these so some her would make like him into time has look two more write"
).split()
ANNOTATION_COLUMNS = ("arousal", "valence", "confidence", "emotion")
EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]


@dataclasses.dataclass(frozen=True)
class MediaJob:
    """One media file to synthesise."""

    path: str  # relative to the database root
    duration: float
    seed: tuple
    measure_zlib: bool = False


# ---------------------------------------------------------------------------
# media


def write_speech(root: str, job: MediaJob) -> tuple[int, int]:
    """Synthesise and write one media file.

    Returns:
        ``(file size, zlib-6 size)``, the latter 0 unless ``job.measure_zlib``

    """
    samples = synth.speech(job.duration, job.seed)
    path = os.path.join(root, job.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Encode in memory: soundfile's close() fsyncs, which is 10x slower
    buffer = io.BytesIO()
    audio_format = os.path.splitext(path)[1][1:].upper()
    soundfile.write(buffer, samples, synth.SAMPLING_RATE, "PCM_16", format=audio_format)
    data = buffer.getvalue()
    with open(path, "wb") as fp:
        fp.write(data)
    compressed = len(zlib.compress(data, 6)) if job.measure_zlib else 0
    return len(data), compressed


def _write_speech_chunk(root: str, jobs: list[MediaJob]) -> list[tuple[int, int]]:
    return [write_speech(root, job) for job in jobs]


def parallel(func: Callable, jobs: list, workers: int, chunk: int = 16) -> list:
    """Run ``func(*job)`` for every job in a process pool, preserving order."""
    if workers <= 1 or len(jobs) <= 1:
        return [func(*job) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return list(pool.map(func, *zip(*jobs, strict=True), chunksize=chunk))


def write_media(root: str, jobs: list[MediaJob], workers: int) -> dict:
    """Write all media files, return bytes and zlib statistics."""
    chunks = [jobs[i : i + 32] for i in range(0, len(jobs), 32)]
    results = parallel(_write_speech_chunk, [(root, c) for c in chunks], workers, 1)
    sizes = [size for chunk in results for size in chunk]
    measured = [
        (raw, comp)
        for (raw, comp), job in zip(sizes, jobs, strict=True)
        if job.measure_zlib
    ]
    return {
        "media_files": len(jobs),
        "media_bytes": sum(raw for raw, _ in sizes),
        "zlib6_ratio": (
            sum(c for _, c in measured) / sum(r for r, _ in measured)
            if measured
            else None
        ),
        "zlib6_sample_files": len(measured),
    }


def media_jobs(
    rng: np.random.Generator,
    count: int,
    ext: str,
    durations: np.ndarray,
    seed: int,
    folder: str = "audio",
) -> list[MediaJob]:
    """Media files spread over speaker folders with the given durations."""
    stride = max(1, count // ZLIB_SAMPLE_FILES)
    speakers = rng.integers(0, SPEAKERS, count)
    return [
        MediaJob(
            path=f"{folder}/spk{speakers[i]:03d}/{i:06d}.{ext}",
            duration=round(float(durations[i]), 3),
            seed=(seed, i),
            measure_zlib=i % stride == 0,
        )
        for i in range(count)
    ]


def utterance_durations(rng: np.random.Generator, count: int) -> np.ndarray:
    """Durations of read utterances: log-normal around 5 s, clipped to 1-15 s."""
    return np.clip(rng.lognormal(np.log(5.0), 0.5, count), 1.0, 15.0)


# ---------------------------------------------------------------------------
# tables


def new_database(name: str):
    """Empty database with the schemes used by all shapes."""
    import audformat

    db = audformat.Database(
        name,
        source="synthetic (audb_publish benchmarks)",
        usage="unrestricted",
        languages=["eng"],
        license=audformat.define.License.CC0_1_0,
    )
    db.schemes["speaker"] = audformat.Scheme(
        "str", labels=[f"spk{i:03d}" for i in range(SPEAKERS)]
    )
    db.schemes["gender"] = audformat.Scheme("str", labels=["female", "male"])
    db.schemes["snr"] = audformat.Scheme("float")
    db.schemes["transcription"] = audformat.Scheme("str")
    db.schemes["emotion"] = audformat.Scheme("str", labels=EMOTIONS)
    db.schemes["confidence"] = audformat.Scheme("float", minimum=0, maximum=1)
    db.schemes["arousal"] = audformat.Scheme("float", minimum=0, maximum=1)
    db.schemes["valence"] = audformat.Scheme("float", minimum=0, maximum=1)
    return db


def sentences(rng: np.random.Generator, count: int) -> list[str]:
    """Random word sequences standing in for transcriptions."""
    lengths = rng.integers(3, 16, count)
    words = np.asarray(WORDS)[rng.integers(0, len(WORDS), int(lengths.sum()))]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[bounds[i] : bounds[i + 1]]) for i in range(count)]


def files_table(db, jobs: list[MediaJob], rng: np.random.Generator):
    """Filewise table: speaker, gender, SNR, transcription."""
    import audformat

    files = [job.path for job in jobs]
    table = audformat.Table(audformat.filewise_index(files))
    db["files"] = table
    speakers = [job.path.split("/")[1] for job in jobs]
    genders = np.where(np.array([int(s[3:]) for s in speakers]) % 2, "male", "female")
    for column, values in (
        ("speaker", speakers),
        ("gender", list(genders)),
        ("snr", rng.normal(25, 6, len(files))),
        ("transcription", sentences(rng, len(files))),
    ):
        table[column] = audformat.Column(scheme_id=column)
        table[column].set(values)


def segments_table(db, jobs: list[MediaJob], rng: np.random.Generator):
    """Segmented table with 1-3 emotion segments per file."""
    import audformat

    files, starts, ends = [], [], []
    for job in jobs:
        bounds = np.sort(rng.uniform(0, job.duration, 2 * rng.integers(1, 4)))
        files += [job.path] * (len(bounds) // 2)
        starts += list(bounds[0::2])
        ends += list(bounds[1::2])
    table = audformat.Table(audformat.segmented_index(files, starts, ends))
    db["segments"] = table
    for column in ("emotion", "confidence"):
        table[column] = audformat.Column(scheme_id=column)
    table["emotion"].set(list(np.asarray(EMOTIONS)[rng.integers(0, 7, len(files))]))
    table["confidence"].set(rng.uniform(0, 1, len(files)))


def save_tables(db, root: str, formats: dict[str, str]):
    """Save the header and every table in its own storage format."""
    db.save(root, header_only=True)
    for table_id, storage_format in formats.items():
        db[table_id].save(
            os.path.join(root, f"db.{table_id}"), storage_format=storage_format
        )


def _timedelta_strings(seconds: np.ndarray) -> list[str]:
    """Format seconds like pandas formats timedeltas in CSV files."""
    micro = np.round(seconds * 1e6).astype(np.int64)
    sec, frac = np.divmod(micro, 1_000_000)
    minutes, sec = np.divmod(sec, 60)
    hours, minutes = np.divmod(minutes, 60)
    return [
        f"0 days {h:02d}:{m:02d}:{s:02d}.{f:06d}"
        for h, m, s, f in zip(
            hours.tolist(), minutes.tolist(), sec.tolist(), frac.tolist(), strict=True
        )
    ]


def _annotation_columns(rng: np.random.Generator, files: list, rows: int) -> dict:
    """Random segments (file, start, end) with ratings and a label."""
    starts = np.round(np.arange(rows) * 0.25 + rng.uniform(0, 0.2, rows), 3)
    return {
        "file": np.asarray(files)[rng.integers(0, len(files), rows)],
        "start": starts,
        "end": starts + np.round(rng.uniform(0.2, 3.0, rows), 3),
        "arousal": rng.uniform(0, 1, rows),
        "valence": rng.uniform(0, 1, rows),
        "confidence": rng.uniform(0, 1, rows),
        "emotion": np.asarray(EMOTIONS)[rng.integers(0, 7, rows)],
    }


def _write_annotation_csv(path: str, columns: dict):
    """Write a segmented table as audformat does, without slow timedelta formatting."""
    import pandas as pd

    frame = pd.DataFrame(columns)
    frame["start"] = _timedelta_strings(columns["start"])
    frame["end"] = _timedelta_strings(columns["end"])
    frame.to_csv(path, index=False, encoding="utf-8")


def _write_annotation_parquet(path: str, table_id: str, columns: dict):
    """Write a segmented table through audformat (parquet)."""
    import audformat

    db = new_database("tmp")
    index = audformat.segmented_index(columns["file"], columns["start"], columns["end"])
    db[table_id] = audformat.Table(index)
    for column in ANNOTATION_COLUMNS:
        db[table_id][column] = audformat.Column(scheme_id=column)
        values = columns[column]
        db[table_id][column].set(list(values) if values.dtype.kind == "U" else values)
    db[table_id].save(path, storage_format="parquet")


def _annotation_table(
    root: str, table_id: str, files: list, seed: tuple, rows: int, fmt: str
):
    """Write one large segmented annotation table (runs in a worker process)."""
    columns = _annotation_columns(np.random.default_rng(seed), files, rows)
    path = os.path.join(root, f"db.{table_id}")
    if fmt == "csv":
        _write_annotation_csv(f"{path}.csv", columns)
    else:
        _write_annotation_parquet(path, table_id, columns)
    return os.path.getsize(f"{path}.{fmt}")


def annotation_table_header(db, table_id: str):
    """Add an (empty) annotation table definition to the header."""
    import audformat

    db[table_id] = audformat.Table(audformat.segmented_index())
    for column in ANNOTATION_COLUMNS:
        db[table_id][column] = audformat.Column(scheme_id=column)


# ---------------------------------------------------------------------------
# shapes


def count(base: int, scale: float, minimum: int = 1) -> int:
    """Scaled count, at least ``minimum``."""
    return max(minimum, int(round(base * scale)))


def build_media_shape(root, name, scale, seed, workers, *, files, ext, durations):
    """Shared builder of the media-heavy shapes (wav, small, flac)."""
    rng = np.random.default_rng([seed, 1])
    n = count(files, scale, 2)
    jobs = media_jobs(rng, n, ext, durations(rng, n), seed)
    info = write_media(root, jobs, workers)
    db = new_database(name)
    files_table(db, jobs, rng)
    segments_table(db, jobs, rng)
    save_tables(db, root, {"files": "csv", "segments": "parquet"})
    return info


def build_wav(root, scale, seed, workers):
    """Media-heavy WAV: 2,000 utterances of 1-15 s (~360 MB)."""
    return build_media_shape(
        root,
        "bench-wav",
        scale,
        seed,
        workers,
        files=2000,
        ext="wav",
        durations=utterance_durations,
    )


def build_small(root, scale, seed, workers):
    """Many small files: 20,000 WAV files of about 1 s."""
    return build_media_shape(
        root,
        "bench-small",
        scale,
        seed,
        workers,
        files=20000,
        ext="wav",
        durations=lambda rng, n: rng.uniform(0.8, 1.2, n),
    )


def build_wav300(root, scale, seed, workers):
    """WAV of about 300 KB each: 1,000 utterances of 8.5-10.3 s (~300 MB)."""
    return build_media_shape(
        root,
        "bench-wav300",
        scale,
        seed,
        workers,
        files=1000,
        ext="wav",
        durations=lambda rng, n: rng.uniform(8.5, 10.3, n),
    )


def build_flac(root, scale, seed, workers):
    """Already-compressed media: 2,000 FLAC utterances of 1-15 s."""
    return build_media_shape(
        root,
        "bench-flac",
        scale,
        seed,
        workers,
        files=2000,
        ext="flac",
        durations=utterance_durations,
    )


def build_tables(root, scale, seed, workers):
    """Table-heavy: 200 CSV + 20 parquet tables of ~4 MB, 20 media files."""
    rng = np.random.default_rng([seed, 2])
    jobs = media_jobs(rng, 20, "wav", utterance_durations(rng, 20), seed)
    info = write_media(root, jobs, workers)
    db = new_database("bench-tables")
    files_table(db, jobs, rng)
    formats = {"files": "csv"}
    n_csv, n_parquet = count(200, scale, 2), count(20, scale, 1)
    table_jobs = []
    for i in range(n_csv + n_parquet):
        fmt = "csv" if i < n_csv else "parquet"
        table_id = f"annotation{i:03d}"
        annotation_table_header(db, table_id)
        formats[table_id] = fmt
        files = [job.path for job in jobs]
        table_jobs.append((root, table_id, files, (seed, 3, i), 35000, fmt))
    sizes = parallel(_annotation_table, table_jobs, workers, 1)
    save_tables(db, root, {"files": "csv"})
    info.update(tables=len(formats), table_bytes=sum(sizes))
    return info


BIGTABLE_ROWS_PER_CHUNK = 500_000


def build_bigtable(root, scale, seed, workers):
    """One large CSV table (~1.1 GB at scale 1, 10M segments), 20 media files."""
    import pandas as pd

    rng = np.random.default_rng([seed, 6])
    jobs = media_jobs(rng, 20, "wav", utterance_durations(rng, 20), seed)
    info = write_media(root, jobs, workers)
    db = new_database("bench-bigtable")
    files_table(db, jobs, rng)
    annotation_table_header(db, "segments")
    rows = count(10_000_000, scale, 1000)
    path = os.path.join(root, "db.segments.csv")
    files = [job.path for job in jobs]
    for number, start in enumerate(range(0, rows, BIGTABLE_ROWS_PER_CHUNK)):
        size = min(BIGTABLE_ROWS_PER_CHUNK, rows - start)
        chunk_rng = np.random.default_rng([seed, 7, number])
        columns = _annotation_columns(chunk_rng, files, size)
        # segments follow each other through the whole table
        columns["start"] = np.round(columns["start"] + start * 0.25, 3)
        columns["end"] = np.round(columns["end"] + start * 0.25, 3)
        frame = pd.DataFrame(columns)
        frame["start"] = _timedelta_strings(columns["start"])
        frame["end"] = _timedelta_strings(columns["end"])
        frame.to_csv(path, mode="a", header=number == 0, index=False)
    save_tables(db, root, {"files": "csv"})
    info.update(tables=2, table_bytes=os.path.getsize(path), rows=rows)
    return info


def _attachment_folder(root: str, folder: str, seed: tuple) -> int:
    """Write one attachment folder: features, text, binary blob, JSON."""
    rng = np.random.default_rng(seed)
    path = os.path.join(root, folder)
    os.makedirs(path, exist_ok=True)
    features = np.cumsum(rng.normal(0, 0.1, (6000, 64)), axis=0).astype(np.float32)
    np.save(os.path.join(path, "features.npy"), features)
    with open(os.path.join(path, "notes.txt"), "w") as fp:
        fp.write("\n".join(sentences(rng, 6000)))
    with open(os.path.join(path, "photo.jpg"), "wb") as fp:
        fp.write(rng.bytes(1_000_000))  # stands in for already-compressed data
    with open(os.path.join(path, "meta.json"), "w") as fp:
        json.dump({"seed": list(seed), "rows": 6000, "columns": 64}, fp)
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def build_attachments(root, scale, seed, workers):
    """Attachment-heavy: 50 attachment folders of ~3 MB, 20 media files."""
    import audformat

    rng = np.random.default_rng([seed, 4])
    jobs = media_jobs(rng, 20, "wav", utterance_durations(rng, 20), seed)
    info = write_media(root, jobs, workers)
    db = new_database("bench-attachments")
    files_table(db, jobs, rng)
    n = count(50, scale, 2)
    folder_jobs = [(root, f"extra/att{i:03d}", (seed, 5, i)) for i in range(n)]
    sizes = parallel(_attachment_folder, folder_jobs, workers, 1)
    for i in range(n):
        db.attachments[f"att{i:03d}"] = audformat.Attachment(f"extra/att{i:03d}")
    save_tables(db, root, {"files": "csv"})
    info.update(attachments=n, attachment_bytes=sum(sizes))
    return info


BUILDERS = {
    "wav": build_wav,
    "small": build_small,
    "wav300": build_wav300,
    "flac": build_flac,
    "tables": build_tables,
    "attachments": build_attachments,
    "bigtable": build_bigtable,
}
# Shapes that are built from another shape's database
BASE_SHAPE = {"incremental": "wav"}


# ---------------------------------------------------------------------------
# cache


def cache_key(shape: str, scale: float, seed: int) -> str:
    """Directory name of a cached database."""
    return f"{shape}-x{scale:g}-seed{seed}-g{GENERATOR_VERSION}"


def folder_stats(root: str) -> tuple[int, int]:
    """Number of files and bytes below ``root``."""
    files = size = 0
    for dirpath, _, names in os.walk(root):
        files += len(names)
        size += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
    return files, size


def ensure(shape: str, scale: float, seed: int, workers: int | None = None) -> dict:
    """Return info (with ``root``) of the cached database, generating it if missing."""
    shape = BASE_SHAPE.get(shape, shape)
    folder = CACHE_ROOT / cache_key(shape, scale, seed)
    info_path = folder / "info.json"
    if info_path.exists():
        return json.loads(info_path.read_text())
    workers = workers or os.cpu_count() or 1
    shutil.rmtree(folder, ignore_errors=True)
    root = folder / "db"
    root.mkdir(parents=True)
    start = time.perf_counter()
    info = BUILDERS[shape](str(root), scale, seed, workers)
    files, size = folder_stats(str(root))
    info.update(
        shape=shape,
        scale=scale,
        seed=seed,
        root=str(root),
        files=files,
        bytes=size,
        generation_seconds=round(time.perf_counter() - start, 2),
    )
    info_path.write_text(json.dumps(info, indent=2))
    return info


def main(argv=None):
    """Command line: generate shapes and print their info."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(BUILDERS))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="regenerate")
    args = parser.parse_args(argv)
    for shape in args.shapes.split(","):
        if args.force:
            key = cache_key(BASE_SHAPE.get(shape, shape), args.scale, args.seed)
            shutil.rmtree(CACHE_ROOT / key, ignore_errors=True)
        info = ensure(shape, args.scale, args.seed)
        print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
