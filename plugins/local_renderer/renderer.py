"""The local renderer: speech, lip-synced presenter, captions and an MP4, all offline."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from avatar_daemon import (
    AvatarProfile, CaptionStyle, FormatSpec, Progress, RenderError, RenderRequest, RenderResult, Script,
    estimate_seconds,
)

from . import captions, child, mix, tts, visemes
from .cards import with_key_sentences
from .encode import Mp4Writer
from .labels import part_text
from .outputs import Outputs, verify_mp4
from .presenter import PresenterArtist
from .scene import Scene, layout_for
from .tts import SAMPLE_RATE, Speech, Word

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


class LocalRenderer:
    name = "local"
    draws_logos = True  # a request's brand_logo goes where a template's logo goes (scene.logo_layer)

    def __init__(self, max_concurrency: int = 1, preset: str = "veryfast", crf: int = 23, threads: int = 0):
        self.max_concurrency = max_concurrency
        self.preset = preset
        self.crf = crf
        self.threads = threads

    def list_avatars(self) -> list[AvatarProfile]:
        return []  # any profile works: presenters are drawn from the profile itself

    def check_photo(self, path: Path, mouth=None) -> None:
        """A faceless photo, or a missing face mesh, refused when the request arrives, not when it renders."""
        from . import photo  # scipy and OpenCV's networks, only for a daemon that is sent photos

        photo.check(path, mouth)

    async def render(self, request: RenderRequest, progress: Progress) -> RenderResult:
        cancel = child.Cancel()  # in a child process: the frame loop must not hold the daemon's GIL
        work = asyncio.ensure_future(asyncio.to_thread(child.run, self.render_sync, request, progress, cancel))
        work.add_done_callback(lambda f: f.cancelled() or f.exception())  # a cancelled render's error is moot
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # The child stops at its next frame and removes its partial files. Wait for that, so a
            # retry started the moment this job ends never shares its folder with a dying render.
            cancel.set()
            await asyncio.wait([work], timeout=10)
            raise

    # ---- the work, in a child process (or a caller's thread) -------------------------

    def speak(self, request: RenderRequest) -> Iterator[Speech]:
        if request.narration:
            yield narration_speech(Path(request.narration), request.script)
        else:
            yield from tts.stream(request.script.paragraphs, request.avatar.voice, request.voice_speed)

    def render_sync(self, request: RenderRequest, progress: Progress,
                    cancel: threading.Event | None = None) -> RenderResult:
        """Every output goes under a temporary name; all are renamed into place only when all are sound."""
        started = time.monotonic()
        fmt = request.format
        if not request.script.text.strip():
            raise RenderError("the script is empty: there is nothing to say")
        limit = fmt.max_seconds * 1.05 + 1
        estimate = estimate_seconds(request.script.text, request.voice_speed)
        if not request.narration and estimate > limit * 1.5:  # clearly too long: say so before any work
            raise RenderError(_too_long(estimate, fmt))
        bed = mix.Bed(Path(request.music)) if request.music else None  # a bad file fails before any work
        progress(1, "synthesising speech")
        feed = SpeechFeed(self.speak(request), limit, fmt)
        outputs = Outputs(request.output_dir)
        scene = None
        try:
            scene = self._scene(request)  # sprites are drawn while the first sentences are spoken
            progress(5, "composing frames")
            speech, cues, thumbnail = self._encode(scene, feed, outputs, progress, cancel,
                                                   expected_frames=int(estimate * fmt.fps), bed=bed)
            progress(99, "writing captions and metadata")
            self._companions(request, outputs, speech, cues, thumbnail, time.monotonic() - started)
            placed = outputs.commit()
        except BaseException:
            feed.stop()
            outputs.discard()
            raise
        finally:
            if scene:
                scene.close()
        return RenderResult(video=placed[VIDEO], thumbnail=placed["thumbnail.jpg"], srt=placed["captions.srt"],
                            vtt=placed["captions.vtt"], metadata=placed["metadata.json"],
                            duration=round(speech.duration, 3))

    def _scene(self, request: RenderRequest) -> Scene:
        fmt = request.format
        photo, mouth = talking_photo(request)
        artist = None if photo else PresenterArtist(request.avatar, layout_for(fmt).head_width)
        return Scene(fmt, artist, photo, request.script.title, request.captions, request.title_card,
                     request.background, request.brand, seed=request.job_id,
                     research=with_key_sentences(request.research), cards=request.cards,
                     look=request.caption_look, mouth=mouth, label=part_text(request.script))

    def _encode(self, scene: Scene, feed: "SpeechFeed", outputs: Outputs, progress: Progress,
                cancel: threading.Event | None, expected_frames: int, bed: mix.Bed | None = None):
        """Compose and encode each batch of frames as soon as the speech under it exists; check the file."""
        fmt = scene.fmt
        fps = fmt.fps
        pieces: list[Speech] = []
        done, complete, thumbnail, shown = 0, False, None, 5.0
        thumb_at = int(fps * 1.2)  # the title is up and the presenter has begun: the still from then on
        writer = Mp4Writer(outputs.open(VIDEO), outputs.final(VIDEO), fmt.width, fmt.height, fps, SAMPLE_RATE,
                           self.preset, self.crf, self.threads)
        try:
            while not complete:
                batch, complete = feed.next_batch()
                pieces += batch
                speech = tts.join(pieces)
                # Frames near the end wait for the next sentence: the nod smooths over a few frames and a
                # caption may stay up until the next one starts.
                ready = (math.ceil(speech.duration * fps) if complete
                         else int((speech.duration - LOOKAHEAD) * fps))
                if ready <= done:
                    continue
                mouths, level = _motion(speech, ready, fps)
                cues = captions.build_cues(speech.words, fmt.caption_style, scene.look.words_per_line)
                scene.use_cues(cues)
                scene.use_words(speech.words, speech.phonemes)
                cue_of, word_of = _caption_timeline(scene.cues, ready, fps)
                gains = mix.bed_gains(speech.words, ready, fps, speech.duration if complete else None) if bed else None
                total = max(expected_frames, ready + 1)
                step = max(1, total // 50)
                for i in range(done, ready):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    frame = writer.new_frame()
                    scene.draw(frame, i, int(mouths[i]), float(level[i]), cue_of[i], word_of[i])
                    writer.add_frame(frame)
                    a = round(i * SAMPLE_RATE / fps)
                    voice = speech.audio[a:round((i + 1) * SAMPLE_RATE / fps)]
                    writer.add_audio(bed.under(voice, a, gains[i], gains[i + 1]) if bed else voice)
                    if thumbnail is None and i >= thumb_at and (scene.poses_for_a_still(i) or i > thumb_at + 2 * fps):
                        thumbnail = frame.to_image()
                    if i % step == 0:  # the total is a guess until the speech ends: never step back
                        shown = max(shown, min(97.0, 5 + 92 * i / total))
                        progress(shown, f"frame {i}")
                done = ready
            rest = speech.audio[round(done * SAMPLE_RATE / fps):]
            writer.add_audio(bed.under(rest, round(done * SAMPLE_RATE / fps), 0.0, 0.0) if bed else rest)
            writer.close()
            if thumbnail is None:  # shorter than the thumbnail's moment: the last frame will do
                thumbnail = frame.to_image()
        except BaseException:
            writer.abort()
            raise
        verify_mp4(outputs.parts[VIDEO], outputs.final(VIDEO), writer.frames)
        return speech, cues, thumbnail

    def _companions(self, request: RenderRequest, outputs: Outputs, speech: Speech, cues, thumbnail,
                    seconds: float) -> None:
        outputs.write_text("captions.srt", captions.to_srt(cues))
        outputs.write_text("captions.vtt", captions.to_vtt(cues))
        outputs.save_jpeg("thumbnail.jpg", thumbnail, quality=88)
        outputs.write_text("metadata.json", json.dumps({
            "duration": round(speech.duration, 3), "title": request.script.title, "script": request.script.text,
            "description": request.script.description, "hashtags": request.script.hashtags,
            "avatar": request.avatar.id, "voice": "narration" if request.narration else request.avatar.voice,
            "voice_speed": request.voice_speed, "format": request.format.name,
            "width": request.format.width, "height": request.format.height, "fps": request.format.fps,
            "renderer": self.name, "render_seconds": round(seconds, 2),
            **({"part": request.script.part.model_dump()} if request.script.part else {}),
            "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for w in speech.words],
        }, indent=2))

    # ---- previews ---------------------------------------------------------------------

    def preview(self, avatar: AvatarProfile, out_dir: Path, fmt: FormatSpec | None = None) -> list[Path]:
        """A still and a 3-second clip of the presenter introducing themselves."""
        fmt = fmt or FormatSpec(name="preview", label="Preview", width=720, height=1280,
                                caption_style=CaptionStyle.karaoke, max_seconds=10)
        text = f"Hi, I'm {avatar.name}. Let's make a video."
        request = RenderRequest(job_id=0, script=Script(title=avatar.name, text=text, estimated_seconds=3),
                                avatar=avatar, format=fmt, output_dir=out_dir / avatar.id, title_card=False)
        result = self.render_sync(request, lambda p, m: None)
        still = out_dir / f"{avatar.id}.jpg"
        clip = out_dir / f"{avatar.id}.mp4"
        result.thumbnail.replace(still)
        result.video.replace(clip)
        for f in (result.srt, result.vtt, result.metadata):
            f.unlink()
        (out_dir / avatar.id).rmdir()
        return [still, clip]


VIDEO = "video.mp4"
LOOKAHEAD = 0.5  # seconds of speech held back from composing until the next sentence arrives


def talking_photo(request: RenderRequest) -> tuple[Path | None, object]:
    """The photo that talks, and where its mouth is if the profile says: a photo sent with the
    request, else a talking-photo profile's own."""
    if request.talking_photo:
        return Path(request.talking_photo), None
    avatar = request.avatar
    if avatar.avatar_type != "talking_photo":
        return None, None
    if not avatar.photo:
        raise RenderError(f"avatar profile {avatar.id!r} is a talking photo without a photo: give it "
                          "photo: (a file in the assets folder) in avatars.yaml")
    return Path(avatar.photo), avatar.mouth


def _too_long(seconds: float, fmt: FormatSpec) -> str:
    return (f"the narration runs {seconds:.0f} s, over the {fmt.max_seconds:.0f} s limit of format "
            f"{fmt.name!r}; shorten the script or pick a longer format")


class SpeechFeed:
    """Speech made on its own thread a sentence at a time; the frame loop takes what is ready."""

    def __init__(self, pieces: Iterator[Speech], limit: float, fmt: FormatSpec):
        self._pieces = pieces
        self._limit = limit
        self._fmt = fmt
        self._ready: list[Speech] = []
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        threading.Thread(target=self._run, name="speech", daemon=True).start()

    def _run(self) -> None:
        duration = 0.0
        try:
            for piece in self._pieces:
                if self._stop.is_set():
                    return
                duration += piece.duration
                if duration > self._limit:
                    raise RenderError(_too_long(duration, self._fmt))
                with self._cond:
                    self._ready.append(piece)
                    self._cond.notify_all()
        except BaseException as exc:
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def next_batch(self) -> tuple[list[Speech], bool]:
        """Wait for new speech or the end; return it and whether the speech is complete."""
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self._done)
            if self._error is not None:
                raise self._error
            batch, self._ready = self._ready, []
            return batch, self._done

    def stop(self) -> None:
        self._stop.set()


def _motion(speech: Speech, frames: int, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """Mouth shape and voice level (0..1, smoothed) for the first `frames` frames."""
    env = visemes.envelope(speech.audio, SAMPLE_RATE, fps)
    env = np.pad(env, (0, max(0, frames - len(env))))
    mouths = (visemes.from_phonemes(speech.phonemes, len(env) / fps, fps, env) if speech.phonemes
              else visemes.from_envelope(env))
    voiced = env[env > visemes.SILENCE]
    loud = float(np.percentile(voiced, 90)) if voiced.size else 1.0
    level = np.clip(env / max(loud, 1e-6), 0, 1)
    level = np.convolve(level, np.ones(5) / 5, mode="same")  # the nod follows the voice, smoothly
    return mouths, level


def _caption_timeline(cues: list[captions.Cue], n: int, fps: int):
    cue_of: list[int | None] = [None] * n
    word_of: list[int | None] = [None] * n
    for ci, cue in enumerate(cues):
        end = cues[ci + 1].start if ci + 1 < len(cues) and cues[ci + 1].start - cue.end < 0.4 else cue.end + 0.2
        for f in range(int(cue.start * fps), min(n, int(math.ceil(end * fps)))):
            t = f / fps
            cue_of[f] = ci
            word_of[f] = max((wi for wi, w in enumerate(cue.words) if w.start <= t), default=0)
    return cue_of, word_of


def narration_speech(path: Path, script: Script) -> Speech:
    """A user's own recording: decoded and levelled; the script's words spread over the voiced time."""
    audio = tts.normalise(mix.decode_audio(path, "narration file"))
    fps = 100
    env = visemes.envelope(audio, SAMPLE_RATE, fps)
    voiced = env > visemes.SILENCE
    tokens = script.text.split()
    if not voiced.any() or not tokens:
        return Speech(audio)
    voiced_times = np.nonzero(voiced)[0] / fps
    weights = np.array([max(len(t), 1) for t in tokens], float)
    edges = np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * (len(voiced_times) - 1)
    words = [Word(t, float(voiced_times[int(edges[i])]), float(voiced_times[int(edges[i + 1])]))
             for i, t in enumerate(tokens)]
    return Speech(audio, words)
