"""H.264/AAC MP4 through PyAV: yuv420p frames and mono speech in, a browser-ready file out."""

from __future__ import annotations

import contextlib
import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .yuv import Frame

AUDIO_RATE = 48000


class Mp4Writer:
    """Writes to `path` while it is open; the caller renames it into place when all went well.

    Encoding and muxing happen on a thread of their own, fed by a short queue: PyAV lets go
    of the GIL inside the encoder, so the next frame is composed while x264 works on this one.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int, speech_rate: int,
                 preset: str = "veryfast", crf: int = 23, threads: int = 0, depth: int = 4):
        # faststart moves the index to the front, so browsers and Slack start playing at once
        self.container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.width, self.video.height = width, height
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.thread_count = threads
        self.video.options = {
            "preset": preset, "crf": str(crf), "profile": "high",
            "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709",
        }
        self.audio = self.container.add_stream("aac", rate=AUDIO_RATE)
        self.audio.layout = "mono"
        self.speech_rate = speech_rate
        self.fps = fps
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self._audio_pts = 0
        self.frames = 0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mp4-encoder", daemon=True)
        self._thread.start()

    def new_frame(self) -> Frame:
        """A fresh frame to draw into and hand to add_frame(); the encoder owns it after that."""
        return Frame.wrap(av.VideoFrame(self.video.width, self.video.height, "yuv420p"))

    def add_frame(self, frame: Frame) -> None:
        vf = frame.video_frame
        if vf is None:
            raise ValueError("add_frame() takes frames made by new_frame()")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.fps)
        self.frames += 1
        self._put((self.video, vf))

    def add_audio(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        af = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        af.sample_rate = self.speech_rate
        af.pts = self._audio_pts
        af.time_base = Fraction(1, self.speech_rate)
        self._audio_pts += samples.size
        self._put((self.audio, af))

    def close(self) -> None:
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=10)

    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
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
                frames = self._resampler.resample(frame) if stream is self.audio else [frame]
                for f in frames:
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
            with contextlib.suppress(av.FFmpegError):
                self.container.close()
