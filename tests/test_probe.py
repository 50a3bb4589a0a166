"""audb_publish.probe.properties() against audb 1.15's own media scan."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess

import audb.core.publish
import numpy as np
import pytest
import soundfile

from audb_publish import probe
from audb_publish.probe import HEAD_SIZE
from audb_publish.probe import properties

CASES = {}


def case(function):
    """Register a function creating a media file in a folder."""
    CASES[function.__name__] = function
    return function


def reference(path):
    """Return what audb stores for ``path``, or the exception it raises."""
    root, file = os.path.split(path)
    try:
        values = audb.core.publish._media_values(root, file, "1.0.0", "a", "c")
    except Exception as error:
        return type(error), str(error)
    return values[2], values[3], values[5], values[8]


def call(*args):
    """Return what properties() returns, or the exception it raises."""
    try:
        return properties(*args)
    except Exception as error:
        return type(error), str(error)


def head_and_size(path):
    with open(path, "rb") as file:
        head = file.read(HEAD_SIZE)
    return head, os.path.getsize(path)


def assert_same(path):
    """properties() with and without head equals audb, value and type."""
    expected = reference(path)
    results = [call(path)]
    if os.path.isfile(path):
        head, size = head_and_size(path)
        results += [call(path, head, size), call(path, head)]
    for result in results:
        assert result == expected
        assert [type(value) for value in result] == [type(value) for value in expected]
    return expected


# ---------------------------------------------------------------- builders


def signal(frames, channels):
    rng = np.random.default_rng(frames * 31 + channels)
    return rng.uniform(-0.5, 0.5, (frames, channels))


def write(path, frames=1001, channels=1, rate=16000, **kwargs):
    soundfile.write(path, signal(frames, channels), rate, **kwargs)
    return str(path)


def chunk(marker, body, pad=True):
    data = marker + struct.pack("<I", len(body)) + body
    return data + b"\0" if pad and len(body) % 2 else data


def fmt(tag=1, channels=1, rate=16000, bits=16, align=None, size=None, extra=b""):
    align = bits // 8 * channels if align is None else align
    rate_bytes = rate * align & 0xFFFFFFFF
    body = struct.pack("<HHIIHH", tag, channels, rate, rate_bytes, align, bits)
    body += extra
    data = b"fmt " + struct.pack("<I", len(body) if size is None else size) + body
    return data


def extensible(channels=2, bits=16, tag=1, mask=3, size=40, align=None):
    guid = struct.pack("<H", tag) + bytes.fromhex("000000001000800000aa00389b71")
    extra = struct.pack("<HHI", 22, bits, mask) + guid
    return fmt(0xFFFE, channels, 16000, bits, align, size, extra)


def riff(*chunks, riff_size=None, form=b"WAVE"):
    body = form + b"".join(chunks)
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def pcm(frames=1001, channels=1, bits=16):
    return bytes(range(256)) * (frames * channels * bits // 8 // 256 + 1)


def save(folder, name, data):
    path = folder / name
    path.write_bytes(data)
    return str(path)


def info_list(*items, kind=b"INFO"):
    return chunk(b"LIST", kind + b"".join(chunk(m, body) for m, body in items))


def wav(folder, name, *chunks, **kwargs):
    return save(folder, name, riff(fmt(), *chunks, **kwargs))


def data(frames=1001, channels=1, bits=16):
    return chunk(b"data", pcm(frames, channels, bits)[: frames * channels * bits // 8])


def flac_blocks(folder, *blocks, streaminfo=None):
    """FLAC file whose metadata after STREAMINFO is ``blocks``."""
    original = folder / "original.flac"
    write(original, 999, 2, 22050)
    content = original.read_bytes()
    info = content[8:42] if streaminfo is None else streaminfo
    position = 42
    while True:
        header = content[position]
        position += 4 + int.from_bytes(content[position + 1 : position + 4], "big")
        if header & 0x80:
            break
    metadata = b""
    for index, (kind, body) in enumerate(blocks):
        last = 0x80 if index == len(blocks) - 1 else 0
        metadata += bytes([last | kind]) + len(body).to_bytes(3, "big") + body
    first = b"\x00" if blocks else b"\x80"
    return b"fLaC" + first + b"\x00\x00\x22" + info + metadata + content[position:]


def vorbis(vendor=b"probe", comments=(b"TITLE=a",), count=None, tail=b""):
    body = struct.pack("<I", len(vendor)) + vendor
    body += struct.pack("<I", len(comments) if count is None else count)
    for comment in comments:
        body += struct.pack("<I", len(comment)) + comment
    return body + tail


def streaminfo(rate=22050, channels=2, bits=16, frames=999):
    fields = rate << 44 | (channels - 1) << 41 | (bits - 1) << 36 | frames
    return bytes(10) + struct.pack(">Q", fields) + bytes(16)


def ffmpeg(folder, name, *options):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = str(folder / name)
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi"]
    command += ["-i", "sine=frequency=440:sample_rate=16000:duration=1.2345"]
    subprocess.run([*command, *options, path], check=True)
    return path


# ------------------------------------------------------ files from writers

SUBTYPES = {
    "WAV": [
        "PCM_U8",
        "PCM_16",
        "PCM_24",
        "PCM_32",
        "FLOAT",
        "DOUBLE",
        "ULAW",
        "ALAW",
        "IMA_ADPCM",
        "MS_ADPCM",
        "GSM610",
        "G721_32",
        "NMS_ADPCM_16",
        "NMS_ADPCM_24",
        "NMS_ADPCM_32",
    ],
    "WAVEX": ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW"],
    "RF64": ["PCM_16", "FLOAT"],
    "W64": ["PCM_16", "PCM_24", "IMA_ADPCM"],
    "FLAC": ["PCM_S8", "PCM_16", "PCM_24"],
    "OGG": ["VORBIS", "OPUS"],
    "MP3": ["MPEG_LAYER_III"],
}
EXTENSIONS = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "wav"}
SHAPES = [(1001, 1, 16000), (1, 2, 44100), (4000, 6, 8000), (333, 3, 48000)]


@pytest.mark.parametrize(
    "container, subtype",
    [(c, s) for c, subtypes in SUBTYPES.items() for s in subtypes],
)
@pytest.mark.parametrize("frames, channels, rate", SHAPES)
def test_soundfile_formats(tmp_path, container, subtype, frames, channels, rate):
    if subtype not in soundfile.available_subtypes(container):
        pytest.skip(f"libsndfile cannot write {container} {subtype}")
    extension = EXTENSIONS.get(container, container.lower())
    path = tmp_path / f"file.{extension}"
    try:
        write(path, frames, channels, rate, format=container, subtype=subtype)
    except (RuntimeError, ValueError, TypeError):
        pytest.skip(f"libsndfile cannot write {container} {subtype} like this")
    assert_same(str(path))


@pytest.mark.parametrize(
    "name, options",
    [
        ("pcm16.wav", ["-c:a", "pcm_s16le"]),
        ("pcm24.wav", ["-c:a", "pcm_s24le", "-ac", "2"]),
        ("float.wav", ["-c:a", "pcm_f32le"]),
        ("six.wav", ["-c:a", "pcm_s16le", "-ac", "6"]),
        ("meta.wav", ["-c:a", "pcm_s16le", "-metadata", "title=probe"]),
        ("bext.wav", ["-c:a", "pcm_s16le", "-write_bext", "1"]),
        ("rf64.wav", ["-c:a", "pcm_s16le", "-rf64", "always"]),
        ("mp3.wav", ["-c:a", "libmp3lame"]),
        ("file.flac", ["-c:a", "flac"]),
        ("file.mp3", []),
        ("vorbis.ogg", ["-c:a", "libvorbis"]),
        ("opus.ogg", ["-c:a", "libopus"]),
        ("file.opus", ["-c:a", "libopus"]),
        ("file.m4a", ["-c:a", "aac"]),
        ("file.mp4", []),
        ("FILE.MP4", []),
    ],
)
def test_ffmpeg_formats(tmp_path, name, options):
    assert_same(ffmpeg(tmp_path, name, *options))


def test_ffmpeg_pipe(tmp_path):
    # written to a pipe, data and RIFF sizes are 0xFFFFFFFF
    path = ffmpeg(tmp_path, "pipe.wav", "-c:a", "pcm_s16le", "-f", "wav", "-")
    assert_same(path)


@pytest.mark.parametrize(
    "name, options",
    [
        ("sox16.wav", ["-b", "16"]),
        ("sox24.wav", ["-b", "24", "-c", "2"]),
        ("sox8.wav", ["-b", "8", "-c", "6"]),
        ("sox.flac", ["-b", "24"]),
        ("sox.ogg", []),
        ("sox.aiff", []),
    ],
)
def test_sox_formats(tmp_path, name, options):
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    path = str(tmp_path / name)
    command = ["sox", "-n", "-r", "22050", *options, path, "synth", "0.51", "sine"]
    subprocess.run(command, check=True)
    assert_same(path)


# ------------------------------------------------------------ crafted WAVs


@case
def list_before_data(folder):
    return wav(
        folder, "a.wav", info_list((b"ISFT", b"Lavf"), (b"INAM", b"odd")), data()
    )


@case
def list_after_data(folder):
    return wav(folder, "a.wav", data(), info_list((b"ISFT", b"probe")))


@case
def chunks_after_data_beyond_head(folder):
    big = data(40000, 1, 16)
    return wav(folder, "a.wav", big, chunk(b"JUNK", b"x" * 30), chunk(b"fact", b"0000"))


@case
def unknown_chunk_after_data_beyond_head(folder):
    return wav(folder, "a.wav", data(40000), chunk(b"cue ", bytes(28)))


@case
def list_adtl(folder):
    return wav(folder, "a.wav", info_list((b"labl", b"0000x"), kind=b"adtl"), data())


@case
def list_special(folder):
    return wav(folder, "a.wav", info_list((b"labl", b"0000x")), data())


@case
def list_long_item(folder):
    return wav(folder, "a.wav", info_list((b"ICMT", b"x" * 600)), data())


@case
def list_short_item_header(folder):
    return wav(folder, "a.wav", chunk(b"LIST", b"INFOISFT\x02\x00"), data())


@case
def list_bad_tiling(folder):
    return wav(folder, "a.wav", chunk(b"LIST", b"INFOISFT\x0a\x00\x00\x00ab"), data())


@case
def list_too_big(folder):
    return wav(folder, "a.wav", info_list(*[(b"ICMT", b"x" * 500)] * 140), data())


@case
def list_beyond_file(folder):
    return wav(
        folder, "a.wav", data(), chunk(b"LIST", b"INFOISFT\x02\x00\x00\x00a")[:-3]
    )


@case
def list_tiny(folder):
    return wav(folder, "a.wav", chunk(b"LIST", b"INFO"), data())


@case
def junk_and_pad(folder):
    return wav(
        folder, "a.wav", chunk(b"JUNK", bytes(27)), chunk(b"PAD ", bytes(4)), data()
    )


@case
def huge_junk_before_data(folder):
    junk = b"JUNK" + struct.pack("<I", 0xFFFFFF00) + bytes(10)
    return wav(folder, "a.wav", junk, data())


@case
def fact_and_peak(folder):
    peak = chunk(b"PEAK", bytes(16))
    return wav(folder, "a.wav", chunk(b"fact", b"\xe9\x03\0\0"), peak, data())


@case
def long_fact(folder):
    return wav(folder, "a.wav", chunk(b"fact", bytes(8)), data())


@case
def bad_peak(folder):
    return wav(folder, "a.wav", chunk(b"PEAK", bytes(24)), data())


@case
def peak_before_fmt(folder):
    return save(folder, "a.wav", riff(chunk(b"PEAK", bytes(16)), fmt(), data()))


@case
def smpl_chunk(folder):
    return wav(folder, "a.wav", chunk(b"smpl", bytes(36)), data())


@case
def data_before_fmt(folder):
    return save(folder, "a.wav", riff(data(), fmt()))


@case
def two_data_chunks(folder):
    return wav(folder, "a.wav", data(100), data(200))


@case
def two_fmt_chunks(folder):
    return wav(folder, "a.wav", fmt(channels=2), data())


@case
def no_data_chunk(folder):
    return wav(folder, "a.wav", chunk(b"JUNK", bytes(100)))


@case
def zero_marker_after_data(folder):
    return wav(folder, "a.wav", data(), bytes(16))


@case
def data_size_too_large(folder):
    path = write(folder / "a.wav", 5000, 2)
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) - 1001)
    return path


@case
def data_size_max(folder):
    return wav(folder, "a.wav", b"data\xff\xff\xff\xff" + pcm()[:2002])


@case
def not_closed_properly(folder):
    return save(
        folder, "a.wav", riff(fmt(), b"data\0\0\0\0" + pcm()[:2002], riff_size=8)
    )


@case
def data_size_zero(folder):
    return save(folder, "a.wav", riff(fmt(), b"data\0\0\0\0" + pcm()[:2002]))


@case
def odd_data_padded(folder):
    return save(folder, "a.wav", riff(fmt(bits=8), data(101, 1, 8)))


@case
def odd_data_unpadded(folder):
    return save(folder, "a.wav", riff(fmt(bits=8), data(101, 1, 8)[:-1]))


@case
def odd_data_trailing_bytes(folder):
    return save(folder, "a.wav", riff(fmt(bits=8), data(101, 1, 8) + b"abcdef"))


@case
def partial_frame(folder):
    return save(folder, "a.wav", riff(fmt(channels=2), chunk(b"data", pcm()[:4001])))


@case
def riff_size_wrong(folder):
    return save(folder, "a.wav", riff(fmt(), data(), riff_size=12345678))


@case
def wavpack_data(folder):
    return wav(folder, "a.wav", chunk(b"data", b"wvpk" + pcm()[:996]))


@case
def tiny_data(folder):
    return wav(folder, "a.wav", chunk(b"data", b"\0\0"))


@case
def empty_soundfile_wav(folder):
    return write(folder / "a.wav", 0)


@case
def truncated_chunk_header(folder):
    return save(folder, "a.wav", riff(fmt(), b"data\x10\x00"))


@case
def truncated_fmt(folder):
    return save(folder, "a.wav", riff(fmt())[:30])


@case
def riff_only(folder):
    return save(folder, "a.wav", b"RIFF\x04\0\0\0WAV")


@case
def riff_avi(folder):
    return save(folder, "a.wav", riff(fmt(), data(), form=b"AVI "))


@case
def fmt_short(folder):
    return save(folder, "a.wav", riff(fmt(size=14), data()))


@case
def fmt_long(folder):
    return save(folder, "a.wav", riff(fmt(size=18, extra=b"\0\0"), data()))


@case
def fmt_twelve_bits(folder):
    return save(folder, "a.wav", riff(fmt(bits=12, align=2), data()))


@case
def fmt_no_channels(folder):
    return save(folder, "a.wav", riff(fmt(channels=0, align=2), data()))


@case
def fmt_no_rate(folder):
    return save(folder, "a.wav", riff(fmt(rate=0), data()))


@case
def fmt_huge_rate(folder):
    return save(folder, "a.wav", riff(fmt(rate=2**31 - 1), data()))


@case
def fmt_negative_rate(folder):
    return save(folder, "a.wav", riff(fmt(rate=2**31), data()))


@case
def fmt_bad_align(folder):
    return save(folder, "a.wav", riff(fmt(align=4), data()))


@case
def fmt_broken_24_bit(folder):
    return save(folder, "a.wav", riff(fmt(bits=24, align=4), data(1001, 1, 32)))


@case
def fmt_mulaw(folder):
    return save(
        folder, "a.wav", riff(fmt(7, 2, bits=8, size=18, extra=b"\0\0"), data())
    )


@case
def fmt_alaw_sixteen_bits(folder):
    return save(folder, "a.wav", riff(fmt(6, bits=16), data()))


@case
def fmt_adpcm_tag(folder):
    return save(folder, "a.wav", riff(fmt(0x11, bits=4, align=256), data()))


@case
def extensible_pcm(folder):
    return save(folder, "a.wav", riff(extensible(), data(1001, 2)))


@case
def extensible_float_quad(folder):
    fmt_chunk = extensible(4, 32, tag=3, mask=0x33)
    return save(folder, "a.wav", riff(fmt_chunk, data(1001, 4, 32)))


@case
def extensible_no_mask(folder):
    return save(folder, "a.wav", riff(extensible(3, mask=0), data(1001, 3)))


@case
def extensible_too_many_mask_bits(folder):
    return save(folder, "a.wav", riff(extensible(2, mask=7), data(1001, 2)))


@case
def extensible_short(folder):
    return save(folder, "a.wav", riff(extensible(size=24), data(1001, 2)))


@case
def extensible_unknown_guid(folder):
    return save(folder, "a.wav", riff(extensible(tag=0x55), data(1001, 2)))


@case
def wav_named_mp3(folder):
    return save(folder, "a.mp3", riff(fmt(), data()))


@case
def wav_named_ogg(folder):
    return save(folder, "a.ogg", riff(fmt(), data()))


@case
def wav_named_flac(folder):
    return save(folder, "a.flac", riff(fmt(), data()))


@case
def wav_uppercase(folder):
    return save(folder, "a.WAV", riff(fmt(), data()))


@case
def wav_named_txt(folder):
    return save(folder, "a.txt", riff(fmt(), data()))


@case
def flac_s8_named_wav(folder):
    soundfile.write(
        folder / "a.wav", signal(100, 1), 8000, format="FLAC", subtype="PCM_S8"
    )
    return str(folder / "a.wav")


@case
def flac_named_wav(folder):
    soundfile.write(folder / "a.wav", signal(100, 1), 8000, format="FLAC")
    return str(folder / "a.wav")


@case
def float_wav_named_flac(folder):
    return write(folder / "a.flac", subtype="FLOAT", format="WAV")


# ----------------------------------------------------------- crafted FLACs


@case
def flac_streaminfo_only(folder):
    return save(folder, "a.flac", flac_blocks(folder))


@case
def flac_all_block_types(folder):
    blocks = [(1, bytes(10)), (2, b"abcd1234"), (3, bytes(36)), (4, vorbis())]
    return save(folder, "a.flac", flac_blocks(folder, *blocks))


@case
def flac_picture(folder):
    return save(folder, "a.flac", flac_blocks(folder, (6, bytes(40))))


@case
def flac_bad_seektable(folder):
    return save(folder, "a.flac", flac_blocks(folder, (3, bytes(17))))


@case
def flac_short_application(folder):
    return save(folder, "a.flac", flac_blocks(folder, (2, b"ab")))


@case
def flac_vorbis_too_short(folder):
    return save(folder, "a.flac", flac_blocks(folder, (4, bytes(6))))


@case
def flac_vorbis_vendor_too_long(folder):
    body = struct.pack("<I", 100) + bytes(10)
    return save(folder, "a.flac", flac_blocks(folder, (4, body)))


@case
def flac_vorbis_too_many_comments(folder):
    body = vorbis(comments=(), count=20000, tail=bytes(4))
    return save(folder, "a.flac", flac_blocks(folder, (4, body)))


@case
def flac_vorbis_missing_comment(folder):
    return save(folder, "a.flac", flac_blocks(folder, (4, vorbis(count=2))))


@case
def flac_vorbis_trailing_bytes(folder):
    return save(folder, "a.flac", flac_blocks(folder, (4, vorbis(tail=b"xy"))))


@case
def flac_truncated_metadata(folder):
    content = flac_blocks(folder, (1, bytes(100)), (4, vorbis()))
    return save(folder, "a.flac", content[:100])


@case
def flac_truncated_block_header(folder):
    content = flac_blocks(folder, (1, bytes(100)))
    return save(folder, "a.flac", content[:44])


@case
def flac_truncated_streaminfo(folder):
    return save(folder, "a.flac", flac_blocks(folder)[:30])


@case
def flac_20_bits(folder):
    return save(folder, "a.flac", flac_blocks(folder, streaminfo=streaminfo(bits=20)))


@case
def flac_unknown_length(folder):
    return save(folder, "a.flac", flac_blocks(folder, streaminfo=streaminfo(frames=0)))


@case
def flac_no_rate(folder):
    return save(folder, "a.flac", flac_blocks(folder, streaminfo=streaminfo(rate=0)))


@case
def flac_more_frames_than_file(folder):
    info = streaminfo(96000, 8, 24, 2**36 - 1)
    return save(folder, "a.flac", flac_blocks(folder, streaminfo=info))


@case
def flac_second_streaminfo(folder):
    return save(folder, "a.flac", flac_blocks(folder, (0, streaminfo())))


@case
def flac_garbage_frames(folder):
    content = flac_blocks(folder, (4, vorbis()))
    position = content.index(b"probe") + 30
    return save(folder, "a.flac", content[:position] + bytes(1000))


# -------------------------------------------------------------- not audio


@case
def text_named_wav(folder):
    return save(folder, "a.wav", b"this is not audio\n" * 10)


@case
def text_named_flac(folder):
    return save(folder, "a.flac", b"this is not audio\n" * 10)


@case
def text_named_mp3(folder):
    return save(folder, "a.mp3", b"this is not audio\n" * 10)


@case
def text_named_ogg(folder):
    return save(folder, "a.ogg", b"this is not audio\n" * 10)


@case
def text_file(folder):
    return save(folder, "a.txt", b"this is not audio\n")


@case
def empty_wav(folder):
    return save(folder, "a.wav", b"")


@case
def empty_flac(folder):
    return save(folder, "a.flac", b"")


@case
def missing_wav(folder):
    return str(folder / "missing.wav")


@case
def folder_named_wav(folder):
    (folder / "dir.wav").mkdir()
    return str(folder / "dir.wav")


@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted(tmp_path, name):
    assert_same(CASES[name](tmp_path))


# ------------------------------------------------------------------ others


def test_truncated_everywhere(tmp_path):
    """Cut a WAV with a LIST chunk and a FLAC at every header position."""
    content = riff(fmt(), info_list((b"ISFT", b"x")), data(40))
    flac = flac_blocks(tmp_path, (4, vorbis()))
    for extension, original in (("wav", content), ("flac", flac)):
        for end in range(0, 120):
            assert_same(save(tmp_path, f"cut{end}.{extension}", original[:end]))


def test_fast_path_opens_nothing(tmp_path, monkeypatch):
    """Common files need neither soundfile nor audiofile."""
    paths = [
        write(tmp_path / "a.wav", 1001, 1, 16000),
        write(tmp_path / "b.wav", 333, 6, 48000, subtype="FLOAT", format="WAVEX"),
        write(tmp_path / "c.flac", 1001, 2, 44100, subtype="PCM_24"),
        write(tmp_path / "d.wav", 1001, 2, 8000, subtype="ULAW"),
        CASES["list_before_data"](tmp_path),
    ]
    expected = {path: reference(path) for path in paths}
    heads = {path: head_and_size(path) for path in paths}

    def fail(*args, **kwargs):
        raise AssertionError("fast path left")

    monkeypatch.setattr(probe.soundfile, "info", fail)
    monkeypatch.setattr(probe, "_audiofile_properties", fail)
    for path in paths:
        assert properties(path, *heads[path]) == expected[path]
        assert properties(path) == expected[path]


def test_size_from_file(tmp_path):
    """Without ``size`` a head of HEAD_SIZE bytes needs the file size."""
    path = write(tmp_path / "a.wav", 40000, 2)
    head, _ = head_and_size(path)
    assert len(head) == HEAD_SIZE
    assert properties(path, head) == reference(path)


def test_htk_lookalike(tmp_path):
    """A FLAC of this size could be HTK for libsndfile, so ask soundfile."""
    path = write(tmp_path / "a.flac")
    head, _ = head_and_size(path)
    assert properties(path, head, probe._FLAC_AS_HTK_SIZE) == reference(path)


def test_file_gone(tmp_path):
    """A head that asks for more bytes than it holds, of a deleted file."""
    path = CASES["chunks_after_data_beyond_head"](tmp_path)
    head, size = head_and_size(path)
    expected = reference(path)
    os.remove(path)
    assert properties(path, head, size) == (0, 0, 0.0, 0) == reference(path)
    assert expected != reference(path)


def test_relative_and_home_path(tmp_path, monkeypatch):
    path = write(tmp_path / "a.wav")
    monkeypatch.chdir(tmp_path)
    assert properties("a.wav") == reference(path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert properties("~/a.wav") == reference(path)


@pytest.mark.parametrize("name", ["a.txt", "a.m4a"])
def test_binaries_missing(tmp_path, monkeypatch, name):
    """Without sox and mediainfo audb raises a RuntimeError, and so do we."""
    path = save(tmp_path, name, b"not audio")
    monkeypatch.setenv("PATH", str(tmp_path))
    expected = reference(path)
    assert expected[0] is RuntimeError
    assert call(path) == expected


def test_wav_bytes_in_memory_match_soundfile():
    """The parser agrees with libsndfile on a buffer written by soundfile."""
    buffer = io.BytesIO()
    soundfile.write(buffer, signal(77, 3), 11025, format="WAV", subtype="PCM_24")
    source = probe._Source("unused.wav", buffer.getvalue(), len(buffer.getvalue()))
    assert probe._wav_info(source) == ("PCM_24", 3, 77, 11025)
