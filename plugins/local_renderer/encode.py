"""H.264/AAC MP4 through PyAV: yuv420p frames and mono speech in, a browser-ready file out."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .yuv import Frame

AUDIO_RATE = 48000


class Mp4Writer:
    """Writes to `path` while it is open; the caller renames it into place when all went well."""

    def __init__(self, path: Path, width: int, height: int, fps: int, speech_rate: int,
                 preset: str = "veryfast", crf: int = 23, threads: int = 0):
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

    def add_frame(self, frame: Frame) -> None:
        vf = av.VideoFrame.from_ndarray(frame.buf, format="yuv420p")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.fps)
        self.frames += 1
        for packet in self.video.encode(vf):
            self.container.mux(packet)

    def add_audio(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        af = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        af.sample_rate = self.speech_rate
        af.pts = self._audio_pts
        af.time_base = Fraction(1, self.speech_rate)
        self._audio_pts += samples.size
        for rf in self._resampler.resample(af):
            for packet in self.audio.encode(rf):
                self.container.mux(packet)

    def close(self) -> None:
        for rf in self._resampler.resample(None):
            for packet in self.audio.encode(rf):
                self.container.mux(packet)
        for stream in (self.video, self.audio):
            for packet in stream.encode(None):
                self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass
