"""What we do to HeyGen's files locally with PyAV: check them, square them, join parts, shift subtitles."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import srt

from avatar_daemon import RenderError


def probe(path: Path) -> float:
    """Seconds of a playable MP4 with a video stream; RenderError naming the file when it is not one."""
    if not path.is_file() or path.stat().st_size == 0:
        raise RenderError(f"{path.name} from HeyGen is empty")
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise RenderError(f"{path.name} from HeyGen has no video stream")
            if box.duration:
                return box.duration / av.time_base
            stream = box.streams.video[0]
            return float(stream.duration * stream.time_base) if stream.duration else 0.0
    except av.error.FFmpegError as exc:
        raise RenderError(f"{path.name} from HeyGen is not a playable MP4: {exc}") from None


def square(src: Path, dest: Path, size: int, mode: str, pad_colour: str = "#000000") -> None:
    """Crop the middle of a landscape render, or letterbox it, to size x size; the audio is copied as is."""
    with av.open(str(src)) as inp, av.open(str(dest), "w", format="mp4",
                                           options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        w, h = vin.codec_context.width, vin.codec_context.height
        if mode == "crop":
            side = min(w, h)
            chain = [("crop", f"{side}:{side}:{(w - side) // 2}:{(h - side) // 2}"), ("scale", f"{size}:{size}")]
        else:
            scaled_h = round(h * size / w / 2) * 2
            chain = [("scale", f"{size}:{scaled_h}"),
                     ("pad", f"{size}:{size}:0:{(size - scaled_h) // 2}:color={pad_colour}")]
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(template=vin)] + [graph.add(n, a) for n, a in chain]
        nodes.append(graph.add("format", "yuv420p"))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes).configure()

        rate = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
        vout.width = vout.height = size
        vout.pix_fmt = "yuv420p"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        aout = out.add_stream_from_template(ain) if ain else None

        def drain() -> None:
            while True:
                try:
                    frame = graph.vpull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(vout.encode(frame))

        for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
            if packet.stream is vin:
                for frame in packet.decode():
                    graph.vpush(frame)
                    drain()
            elif packet.dts is not None:
                packet.stream = aout
                out.mux(packet)
        graph.vpush(None)
        drain()
        out.mux(vout.encode(None))


def concat(parts: list[Path], dest: Path) -> list[float]:
    """Join renders made with the same settings by copying packets (no re-encode); returns each part's start."""
    with av.open(str(parts[0])) as first:
        layout = [(s.type, s.codec_context.name, getattr(s.codec_context, "width", None),
                   getattr(s.codec_context, "height", None)) for s in first.streams]
    starts: list[float] = []
    offset = 0.0
    last_dts: dict[int, float] = {}  # per output stream, seconds: the next part's packets must come after
    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        outs = None
        for part in parts:
            first_dts = _first_dts(part)
            with av.open(str(part)) as inp:
                mine = [(s.type, s.codec_context.name, getattr(s.codec_context, "width", None),
                         getattr(s.codec_context, "height", None)) for s in inp.streams]
                if mine != layout:
                    raise RenderError(f"HeyGen's part {part.name} was encoded differently from the first part "
                                      f"({mine} vs {layout}), so the parts cannot be joined without re-encoding")
                if outs is None:
                    outs = [out.add_stream_from_template(s) for s in inp.streams]
                # B-frames start a stream with negative DTS: shift far enough that DTS keeps rising.
                offset = max([offset] + [last_dts[i] - first_dts[i] for i in first_dts if i in last_dts])
                starts.append(offset)
                end = offset
                for packet in inp.demux():
                    if packet.dts is None:
                        continue
                    tb = packet.time_base
                    shift = int(round(offset / tb))
                    packet.pts = packet.pts + shift if packet.pts is not None else None
                    packet.dts += shift
                    step = (packet.duration or 0) * tb
                    end = max(end, float((packet.pts or packet.dts) * tb + step))
                    index = packet.stream.index
                    last_dts[index] = float(packet.dts * tb + step)
                    packet.stream = outs[index]
                    out.mux(packet)
                offset = end
    return starts


def _first_dts(path: Path) -> dict[int, float]:
    found: dict[int, float] = {}
    with av.open(str(path)) as inp:
        for packet in inp.demux():
            if packet.dts is not None and packet.stream.index not in found:
                found[packet.stream.index] = float(packet.dts * packet.time_base)
                if len(found) == len(inp.streams):
                    break
    return found


def join_srt(texts: list[str], starts: list[float]) -> str:
    """One SRT from several, each part's cues moved by the part's start and all renumbered."""
    cues = []
    for text, start in zip(texts, starts, strict=True):
        shift = timedelta(seconds=start)
        for cue in srt.parse(text, ignore_errors=True):
            cue.start, cue.end = cue.start + shift, cue.end + shift
            cues.append(cue)
    return srt.compose(cues)


def srt_to_vtt(text: str) -> str:
    """WebVTT of an SRT: the same numbered cues, with WebVTT's dot before the milliseconds."""
    def stamp(at: timedelta) -> str:
        return srt.timedelta_to_srt_timestamp(at).replace(",", ".")

    cues = [f"{c.index}\n{stamp(c.start)} --> {stamp(c.end)}\n{c.content}" for c in srt.parse(text, ignore_errors=True)]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"
