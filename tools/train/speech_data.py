"""Speech for the small Whisper model: digit strings and short English commands spoken by
espeak-ng (several voices, variants, speeds, pitches and word gaps), resampled to 16 kHz,
with random level, leading silence and added noise, and their log-mel computed as apr's
include/apr/audio/mel.hpp does (whisper's front end)."""
import io
import math
import subprocess
import wave

import numpy as np
import torch
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
N_FFT, HOP = 400, 160
WINDOW_FRAMES = 800  # the encoder's window: 8 s (max_source_positions 400), two frames per position

ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "croak",
            "Alex", "Andrea", "Annie", "benjamin", "caleb", "david", "edward", "linda", "max", "paul", "steph"]
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
        "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
ROOMS = ["kitchen", "bedroom", "living room", "bathroom", "office", "garage", "hallway", "garden"]
DEVICES = ["lights", "fan", "heater", "radio", "television", "coffee machine", "oven", "alarm"]
CITIES = ["london", "paris", "berlin", "tokyo", "boston", "chicago", "madrid", "sydney", "toronto", "dublin"]
NAMES = ["mom", "dad", "alice", "bob", "carol", "david", "emma", "frank", "grace", "henry"]
APPS = ["browser", "calendar", "camera", "settings", "music player", "mail", "map", "notes"]
GENRES = ["jazz", "rock", "classical", "pop", "quiet", "happy"]
DIRECTIONS = ["forward", "back", "left", "right", "up", "down"]
COLORS = ["red", "green", "blue", "yellow", "white", "orange"]
UNITS = ["minutes", "seconds", "hours"]
SHORT = ["stop", "go back", "go home", "volume up", "volume down", "next song", "previous song", "pause the music",
         "resume the music", "what time is it", "cancel", "yes", "no", "help", "repeat that", "mute", "unmute"]


def command(rng):
    """One command sentence (lower case words, numbers spelled out)."""
    n = lambda lo, hi: ONES[rng.randint(lo, hi)]
    forms = [
        lambda: f"turn {rng.choice(['on', 'off'])} the {rng.choice(ROOMS)} {rng.choice(DEVICES)}",
        lambda: f"switch {rng.choice(['on', 'off'])} the {rng.choice(DEVICES)}",
        lambda: f"dim the {rng.choice(ROOMS)} lights",
        lambda: f"set a timer for {n(1, 20)} {rng.choice(UNITS)}",
        lambda: f"set an alarm for {n(1, 12)} {rng.choice(['o clock', 'thirty', 'fifteen', 'forty five'])}",
        lambda: f"play some {rng.choice(GENRES)} music",
        lambda: f"what is the weather {rng.choice(['today', 'tomorrow', 'like'])} in {rng.choice(CITIES)}",
        lambda: f"call {rng.choice(NAMES)}",
        lambda: f"send a message to {rng.choice(NAMES)}",
        lambda: f"open the {rng.choice(APPS)}",
        lambda: f"close the {rng.choice(APPS)}",
        lambda: f"move {rng.choice(DIRECTIONS)} {n(1, 10)} steps",
        lambda: f"make the {rng.choice(ROOMS)} lights {rng.choice(COLORS)}",
        lambda: f"set the temperature to {n(15, 20)} degrees",
        lambda: f"remind me to call {rng.choice(NAMES)} in {n(2, 20)} minutes",
        lambda: rng.choice(SHORT),
    ]
    return rng.choice(forms)()


def digits(rng):
    """A digit string, written with spaces ("4 0 7") so espeak-ng says each digit."""
    return " ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(3, 9)))


def sentence(rng):
    return digits(rng) if rng.random() < 0.4 else command(rng)


def speak(text, voice, speed, pitch, gap):
    """espeak-ng's speech of `text` as float32 at 16 kHz."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    g = math.gcd(SAMPLE_RATE, rate)
    return resample_poly(data, SAMPLE_RATE // g, rate // g).astype(np.float32)


def clip(rng, text, np_rng):
    """A random rendering of `text`: voice, variant, speed, pitch, word gap, level, leading
    silence and noise (white or brown, 5-40 dB SNR, or none), quantised to 16-bit as a WAV file holds it."""
    variant = rng.choice(VARIANTS)
    voice = rng.choice(ACCENTS) + (f"+{variant}" if variant else "")
    settings = {"voice": voice, "speed": rng.randint(120, 230), "pitch": rng.randint(20, 80), "gap": rng.randint(0, 4)}
    audio = speak(text, settings["voice"], settings["speed"], settings["pitch"], settings["gap"])
    peak = np.abs(audio).max() + 1e-9
    audio = audio / peak * rng.uniform(0.1, 0.9)
    lead = np.zeros(int(rng.uniform(0.0, 0.6) * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(rng.uniform(0.0, 0.4) * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([lead, audio, tail])
    settings["noise"] = "none"
    if rng.random() < 0.75:
        snr = rng.uniform(5.0, 40.0)
        noise = np_rng.standard_normal(len(audio)).astype(np.float32)
        if rng.random() < 0.5:
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")  # brown noise without its drift
            settings["noise"] = f"brown {snr:.0f} dB"
        else:
            settings["noise"] = f"white {snr:.0f} dB"
        speech_power = np.mean(audio[len(lead):len(audio) - len(tail)] ** 2)
        noise *= math.sqrt(speech_power / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr / 10))
        audio = audio + noise
    audio = np.clip(audio, -1.0, 32767 / 32768)
    audio = np.round(audio * 32768).astype(np.int16)
    return audio, settings


def hz_to_mel(hz):
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    return hz / f_sp if hz < min_log_hz else min_log_hz / f_sp + math.log(hz / min_log_hz) / (math.log(6.4) / 27.0)


def mel_to_hz(mel):
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    return f_sp * mel if mel < min_log_mel else min_log_hz * math.exp((math.log(6.4) / 27.0) * (mel - min_log_mel))


def mel_filterbank(n_mels):
    """Slaney-normalised triangular filters [n_mels][201] over 0-8 kHz (librosa's, as apr computes them)."""
    bins = N_FFT // 2 + 1
    nyquist = SAMPLE_RATE / 2
    top = hz_to_mel(nyquist)
    edges = [mel_to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    hz = np.array([nyquist * b / (bins - 1) for b in range(bins)])
    filters = np.zeros((n_mels, bins))
    for m in range(n_mels):
        rising = (hz - edges[m]) / (edges[m + 1] - edges[m])
        falling = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1])
        filters[m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (edges[m + 2] - edges[m])
    return filters.astype(np.float32)


def log_mel(samples_int16, filters):
    """The model's input frames for a clip as apr's transcribe computes them: log-mel of the audio
    followed by one window (8 s) of zeros, clamped at max - 8, (x + 4) / 4, of which the audio's
    frames are kept ([n_mels][len // 160]); the encoder window pads them with zeros to 800 frames.
    Only 800 zero samples are appended here: later frames are all at the floor and change neither
    these frames nor the max."""
    audio = torch.from_numpy(samples_int16.astype(np.float64) / 32768.0)
    padded = torch.cat([audio, torch.zeros(800, dtype=torch.float64)])
    stft = torch.stft(padded, N_FFT, HOP, window=torch.hann_window(N_FFT, dtype=torch.float64), center=True,
                      pad_mode="reflect", return_complex=True)
    power = stft[:, :-1].abs() ** 2
    mel = torch.from_numpy(filters.astype(np.float64)) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    frames = len(samples_int16) // HOP
    return ((log_spec[:, :frames] + 4.0) / 4.0).float().numpy()
