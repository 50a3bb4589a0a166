"""The change applied between version 1.0.0 and 1.1.0 of the ``incremental`` shape.

A fraction of the media files is overwritten with new audio
and the same number of new media files is added
(and referenced in the ``files`` table),
as when a database gets a few corrections and a few new recordings.

"""

import os

from generate import MediaJob
from generate import utterance_durations
from generate import write_speech
import numpy as np


def pick(files: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """At least one, deterministic, sorted selection of files."""
    count = max(1, int(round(len(files) * fraction)))
    return sorted(rng.choice(sorted(files), size=count, replace=False).tolist())


def alter(root: str, fraction: float, seed: int) -> list[str]:
    """Alter and add media in the loaded database at ``root``.

    Returns:
        files below ``root`` that were written (media and table files)

    """
    import audformat

    rng = np.random.default_rng([seed, 7])
    db = audformat.Database.load(root, load_data=True)
    files = list(db.files.unique())
    altered = pick(files, fraction, rng)
    count = len(altered)
    durations = utterance_durations(rng, 2 * count)
    for i, file in enumerate(altered):
        write_speech(root, MediaJob(file, float(durations[i]), (seed, 8, i)))
    added = [f"audio/new/{i:06d}.wav" for i in range(count)]
    for i, file in enumerate(added):
        write_speech(root, MediaJob(file, float(durations[count + i]), (seed, 9, i)))
    table = db["files"]
    fill = {
        "speaker": "spk000",
        "gender": "female",
        "snr": 20.0,
        "transcription": "new",
    }
    table.extend_index(audformat.filewise_index(added), fill_values=fill, inplace=True)
    table.save(os.path.join(root, "db.files"), storage_format="csv")
    return altered + added + ["db.files.csv"]
