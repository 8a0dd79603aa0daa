"""wav2vec2 noise cancellation by waveform inversion.

One module per concern, in pipeline order: ``audio_io`` · ``pairs`` · ``signal_path`` · ``model`` ·
``training`` · ``inference`` · ``metrics`` · ``acoustics`` (the ANC plant) · ``baselines`` ·
``evaluation`` · ``switching`` · ``plots`` · ``notebook_ui``, and ``records`` (strict JSON, free of torch).
Imports run one way: the UI and plots use the model and metrics, never back. Nothing runs at import time.
"""
