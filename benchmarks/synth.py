"""Fast, deterministic speech-like audio synthesis with numpy.

The signal imitates read speech closely enough
that general purpose compressors (deflate) see similar statistics:
voiced segments built from a harmonic wavetable
whose pitch and loudness move continuously,
short fricative noise bursts,
pauses,
and a low background noise floor.
Everything is vectorised over the samples of one utterance,
so synthesis runs at several hundred times real time.

"""

import functools

import numpy as np

SAMPLING_RATE = 16000
TABLE_SIZE = 2048
NUM_HARMONICS = 24
NOISE_FLOOR_DB = -55.0
BREATHINESS = 0.03
GAIN = 1.5
# Rough formant centre frequencies (Hz) of a few vowels (F1, F2, F3)
VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
    (440, 1020, 2240),
)
# Segment kinds
VOICED, FRICATIVE, PAUSE = 0, 1, 2


@functools.lru_cache(maxsize=512)
def _wavetables(f0_ref: int) -> np.ndarray:
    """One period of a vowel-like waveform per vowel, shape (vowels, TABLE_SIZE)."""
    rng = np.random.default_rng(f0_ref)
    k = np.arange(1, NUM_HARMONICS + 1)
    freqs = k * f0_ref
    tables = []
    for formants in VOWELS:
        weight = 1.0 / k  # glottal source tilt
        for i, f in enumerate(formants):
            bandwidth = 80.0 + 40.0 * i
            weight = weight * (1.0 + 6.0 / (1.0 + ((freqs - f) / bandwidth) ** 2))
        spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
        spectrum[k] = weight * np.exp(1j * rng.uniform(0, 2 * np.pi, NUM_HARMONICS))
        table = np.fft.irfft(spectrum, TABLE_SIZE)
        tables.append(table / np.abs(table).max())
    return np.asarray(tables, dtype=np.float32)


def _segments(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sequence of segment kinds and lengths (in samples) covering ``n``."""
    count = int(n / (0.08 * SAMPLING_RATE)) + 4
    kinds = rng.choice([VOICED, FRICATIVE, PAUSE], size=count, p=[0.6, 0.15, 0.25])
    low = np.array([0.08, 0.04, 0.05])[kinds]
    high = np.array([0.30, 0.12, 0.35])[kinds]
    lengths = (rng.uniform(low, high) * SAMPLING_RATE).astype(np.int64)
    # Leading and trailing silence as in segmented recordings
    kinds[0] = PAUSE
    lengths[0] = int(rng.uniform(0.1, 0.3) * SAMPLING_RATE)
    return kinds, lengths


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average using a cumulative sum (O(n))."""
    pad = np.concatenate([np.full(width, x[0]), x, np.full(width, x[-1])])
    c = np.cumsum(pad, dtype=np.float64)
    out = (c[width:] - c[:-width]) / width
    start = width // 2
    return out[start : start + len(x)].astype(np.float32)


def _pitch(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    """Pitch contour in Hz: declination plus random accents every ~150 ms."""
    t = np.arange(n, dtype=np.float32) / SAMPLING_RATE
    duration = n / SAMPLING_RATE
    knots = np.arange(0.0, duration + 0.3, 0.15)
    semitones = rng.normal(0.0, 2.0, len(knots))
    contour = np.interp(t, knots, semitones).astype(np.float32)
    contour -= 1.5 * t / max(duration, 1.0)  # declination
    jitter = _moving_average(rng.normal(0, 0.3, n).astype(np.float32), 40)
    return f0 * np.exp2((contour + jitter) / 12.0)


def _segment_position(lengths: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Relative position (0..1) of every sample inside its segment."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return (np.arange(n) - starts[index]) / lengths[index]


def _voiced(rng, n, index, kinds, position, f0):
    """Harmonic voiced excitation with vowel transitions and loudness movement."""
    tables = _wavetables(int(f0))
    phase = np.cumsum(_pitch(rng, n, f0) / SAMPLING_RATE, dtype=np.float64)
    table_index = ((phase % 1.0) * TABLE_SIZE).astype(np.int32)
    vowels = rng.integers(0, len(VOWELS), len(kinds))
    vowel_a = vowels[index]
    vowel_b = np.roll(vowels, -1)[index]  # glide towards the next vowel
    blend = position.astype(np.float32)
    wave = (1 - blend) * tables[vowel_a, table_index] + blend * tables[
        vowel_b, table_index
    ]
    level = rng.uniform(0.05, 0.35, len(kinds)).astype(np.float32)
    envelope = np.where(kinds[index] == VOICED, level[index], 0.0).astype(np.float32)
    envelope *= np.sqrt(np.sin(np.pi * position)).astype(np.float32)
    breath = BREATHINESS * rng.standard_normal(n, dtype=np.float32)
    return (wave + breath) * _moving_average(envelope, 160)


def _fricative(rng, n, index, kinds, position):
    """High-passed noise bursts for unvoiced consonants."""
    noise = rng.standard_normal(n, dtype=np.float32)
    noise = np.diff(noise, prepend=np.float32(0))
    level = rng.uniform(0.005, 0.04, len(kinds)).astype(np.float32)
    envelope = np.where(kinds[index] == FRICATIVE, level[index], 0.0).astype(np.float32)
    envelope *= np.sin(np.pi * position).astype(np.float32)
    return noise * _moving_average(envelope, 80)


def speech(duration: float, seed) -> np.ndarray:
    """Speech-like mono signal as int16 samples.

    Args:
        duration: length in seconds
        seed: anything accepted by :func:`numpy.random.default_rng`

    Returns:
        int16 array of ``round(duration * SAMPLING_RATE)`` samples

    """
    rng = np.random.default_rng(seed)
    n = max(int(round(duration * SAMPLING_RATE)), 1)
    kinds, lengths = _segments(rng, n)
    index = np.repeat(np.arange(len(kinds)), lengths)
    if len(index) < n:  # pragma: no cover - segments are drawn generously
        index = np.concatenate([index, np.full(n - len(index), len(kinds) - 1)])
    index = index[:n]
    position = _segment_position(lengths, index, n)
    f0 = rng.choice([rng.uniform(90, 140), rng.uniform(170, 260)])
    signal = _voiced(rng, n, index, kinds, position, f0)
    signal += _fricative(rng, n, index, kinds, position)
    signal += rng.normal(0.0, 10 ** (NOISE_FLOOR_DB / 20), n).astype(
        np.float32
    )  # noise floor
    signal *= rng.uniform(0.5, 1.0) * GAIN  # recording level
    return np.clip(signal * 32767, -32768, 32767).astype(np.int16)
