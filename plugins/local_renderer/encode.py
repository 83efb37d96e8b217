"""H.264/AAC MP4 through PyAV: yuv420p frames and mono speech in, a browser-ready file out."""

from __future__ import annotations

import contextlib
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import numpy as np

from .outputs import sync, write_failure
from .yuv import Frame

AUDIO_RATE = 48000


class Mp4Writer:
    """Writes into `file` (opened "w+b", which it closes); the caller checks it and renames it into place.

    Encoding and muxing happen on a thread of their own, fed by a short queue: PyAV lets go
    of the GIL inside the encoder, so the next frame is composed while x264 works on this one.
    x264 copies a picture in before its encode call returns, so each frame then comes back for
    reuse: a few buffers in turn instead of a new one per frame, and the composer, which knows
    what it drew on them, redraws only that.
    Every failure to write, the trailer's included, is a RenderError naming `shown_as`.
    """

    def __init__(self, file: IO[bytes], shown_as: Path, width: int, height: int, fps: int, speech_rate: int,
                 preset: str = "veryfast", crf: int = 23, threads: int = 0, depth: int = 4):
        self.file = file
        self.shown_as = shown_as
        self._io = _Guarded(file)
        # faststart moves the index to the front, so browsers and Slack start playing at once
        self.container = av.open(self._io, mode="w", format="mp4", options={"movflags": "+faststart"})
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.width, self.video.height = width, height
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.thread_count = threads
        # One B-frame between references, not the preset's three: on a presenter whose head moves by
        # fractions of a pixel in every frame, x264 spent 17% more CPU on the same 600 composed frames
        # for a file 12% smaller, and a render on two cores is bound by the encoder. Diamond motion
        # search, not hexagon: that head moves under a pixel a frame, and on those frames x264 spent
        # 6% less CPU for the same size and luma PSNR (49.9 dB); on still frames it changes nothing.
        self.video.options = {
            "preset": preset, "crf": str(crf), "profile": "high",
            "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709:bframes=1:me=dia",
        }
        self.audio = self.container.add_stream("aac", rate=AUDIO_RATE)
        self.audio.layout = "mono"
        self.speech_rate = speech_rate
        self.fps = fps
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self._audio_pts = 0
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self.frames = 0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # frames x264 is done with
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mp4-encoder", daemon=True)
        self._thread.start()

    def new_frame(self) -> Frame:
        """A frame to draw into and hand to add_frame(); the encoder owns it after that. It may be
        one used before, holding what was drawn on it then (see `Frame.drawn`)."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return Frame.wrap(av.VideoFrame(self.video.width, self.video.height, "yuv420p"))

    def add_frame(self, frame: Frame) -> None:
        vf = frame.video_frame
        if vf is None:
            raise ValueError("add_frame() takes frames made by new_frame()")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.fps)
        self.frames += 1
        self._put((self.video, frame))

    def add_audio(self, samples: np.ndarray) -> None:
        """Sound is passed on in pieces of about a second: a frame's worth at a time (735 samples),
        each piece's trip through the resampler and the AAC encoder cost more than the sound did."""
        if samples.size == 0:
            return
        self._pending.append(np.asarray(samples, np.float32))  # a view: concatenate copies it later
        self._pending_samples += samples.size
        if self._pending_samples >= self.speech_rate:
            self._flush_audio()

    def _flush_audio(self) -> None:
        if not self._pending_samples:
            return
        samples = np.concatenate(self._pending)
        self._pending, self._pending_samples = [], 0
        af = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        af.sample_rate = self.speech_rate
        af.pts = self._audio_pts
        af.time_base = Fraction(1, self.speech_rate)
        self._audio_pts += samples.size
        self._put((self.audio, af))

    def close(self) -> None:
        """Finish the file and sync it to disk; raises if any byte of it could not be written."""
        self._flush_audio()
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._failure()
        try:
            sync(self.file)
            self.file.close()
        except OSError as exc:
            raise write_failure(self.shown_as, exc) from None

    def abort(self) -> None:
        self._error = self._error or _Aborted()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=10)
        with contextlib.suppress(OSError, ValueError):
            self.file.close()

    def _failure(self) -> BaseException:
        if isinstance(self._error, (OSError, av.FFmpegError)):
            return write_failure(self.shown_as, self._error)
        return self._error

    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._failure()
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if self._error is not None:
                    break  # aborted: stop encoding, just close
                stream, frame = item
                if stream is self.video:
                    for packet in stream.encode(frame.video_frame):
                        self.container.mux(packet)
                    self._free.put(frame)  # x264 has its own copy now
                    continue
                for f in self._resampler.resample(frame):
                    for packet in stream.encode(f):
                        self.container.mux(packet)
            if self._error is None:
                for rf in self._resampler.resample(None):
                    for packet in self.audio.encode(rf):
                        self.container.mux(packet)
                for stream in (self.video, self.audio):
                    for packet in stream.encode(None):
                        self.container.mux(packet)
        except BaseException as exc:
            self._error = exc  # the producer sees it at its next put, within half a second
        finally:
            self._io.discarding = self._error is not None
            try:
                self.container.close()  # the trailer and the faststart pass: where a full disk often shows
            except Exception as exc:
                self._error = self._error or exc


class _Guarded:
    """The file as PyAV sees it. Once the file is being discarded, writes and seeks go nowhere: the
    trailer PyAV writes on close would only fail again on a full disk, and PyAV prints every such failure."""

    def __init__(self, file: IO[bytes]):
        self.file = file
        self.name = file.name  # faststart's second pass reopens the file by name to read it
        self.discarding = False

    def write(self, data: bytes) -> int:
        return len(data) if self.discarding else self.file.write(data)

    def read(self, size: int = -1) -> bytes:
        return b"" if self.discarding else self.file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0 if self.discarding else self.file.seek(offset, whence)

    def tell(self) -> int:
        return 0 if self.discarding else self.file.tell()

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True


class _Aborted(Exception):
    """The writer was stopped by its caller; whatever it wrote is discarded."""
