"""The notebook's façade over the ``wav2vec2_anc`` package: every name a notebook cell calls, in one place.

The notebook ``wav2vec2_noise_cancellation.ipynb`` reads ``helpers.X``; the logic lives in the
package, one concern per module. Nothing runs at import time.
"""

from wav2vec2_anc.audio_io import (
    DEFAULT_SAMPLE,
    SAMPLE_AUDIO_DIR,
    SAMPLE_RATE,
    AudioInputError,
    list_audio_files,
    load_audio,
    save_audio,
)
from wav2vec2_anc.backends import fastest_backend, installed_backends, with_backend
from wav2vec2_anc.baselines import (
    controller_drive,
    delayed_negation,
    fit_filter_bank,
    fit_stretch_bank,
    fit_wiener_controller,
    fit_wiener_predictor,
    nlms_inverse,
    stretch_count,
    wiener_inverse,
)
from wav2vec2_anc.config import (
    HEAD_DEFAULTS,
    NoiseCancellationConfig,
    bank_hears_the_ear,
    bank_settings,
    head_settings,
    latency_samples,
    plant_settings,
    warmup_samples,
)
from wav2vec2_anc.evaluation import (
    format_comparison,
    gate_encoder_correction,
    headline,
    heldout_inverses,
    heldout_model_nr_db,
    new_file_comparison,
    per_file_metrics,
    run_metrics,
    write_outputs,
)
from wav2vec2_anc.export import load_exported
from wav2vec2_anc.inference import (
    StreamingCanceller,
    cancel_file,
    closed_loop_drive,
    heard_at_ear,
    predict_inverse,
    stream_inverse,
)
from wav2vec2_anc.metrics import all_metrics, display_db, noise_reduction_db
from wav2vec2_anc.model import Wav2Vec2ForNoiseCancellation, build_model, describe_model
from wav2vec2_anc.notebook_ui import (
    ask_for_audio,
    in_colab,
    listening_set,
    offer_download,
    play_all,
    resolve_audio_path,
    zip_outputs,
)
from wav2vec2_anc.pairs import Clip, build_dataset, load_clips, training_audio, validation_split
from wav2vec2_anc.plant import IDENTIFICATION_SNR_DB, Plant, make_plant
from wav2vec2_anc.plots import plot_loss_curve, plot_paths, plot_spectrograms, plot_switching, plot_waveforms
from wav2vec2_anc.recipe import StartFilters, build_canceller, fine_tune, min_train_samples, start_filters, training_pairs
from wav2vec2_anc.records import dumps_strict, loads_strict, provenance, with_provenance
from wav2vec2_anc.settings import AdvancedSettings, advanced_settings
from wav2vec2_anc.switching import switching_comparison, switching_records
from wav2vec2_anc.training import (
    TrainSettings,
    cpu_runtime_note,
    loss_history,
    make_trainer,
    mixed_precision,
    run_fingerprint,
    train,
)

__all__ = [
    "IDENTIFICATION_SNR_DB", "Plant", "make_plant", "controller_drive", "fit_wiener_controller", "plant_settings",
    "DEFAULT_SAMPLE", "SAMPLE_AUDIO_DIR", "SAMPLE_RATE", "AudioInputError", "load_audio", "save_audio",
    "delayed_negation", "fit_filter_bank", "fit_stretch_bank", "stretch_count",
    "fit_wiener_predictor", "nlms_inverse", "wiener_inverse",
    "new_file_comparison", "format_comparison", "headline", "gate_encoder_correction", "heldout_inverses",
    "heldout_model_nr_db", "per_file_metrics", "run_metrics", "write_outputs", "min_train_samples",
    "StartFilters", "start_filters", "training_pairs", "build_canceller", "fine_tune",
    "dumps_strict", "loads_strict", "provenance", "with_provenance", "AdvancedSettings", "advanced_settings",
    "StreamingCanceller", "cancel_file", "closed_loop_drive", "heard_at_ear", "predict_inverse", "stream_inverse",
    "fastest_backend", "installed_backends", "load_exported", "with_backend",
    "all_metrics", "display_db", "noise_reduction_db",
    "HEAD_DEFAULTS", "NoiseCancellationConfig", "Wav2Vec2ForNoiseCancellation", "bank_hears_the_ear", "bank_settings",
    "build_model", "describe_model", "head_settings",
    "latency_samples", "warmup_samples",
    "ask_for_audio", "in_colab", "listening_set", "offer_download", "play_all", "resolve_audio_path", "zip_outputs",
    "list_audio_files",
    "Clip", "build_dataset", "load_clips", "training_audio", "validation_split",
    "plot_loss_curve", "plot_paths", "plot_spectrograms", "plot_switching", "plot_waveforms",
    "switching_comparison", "switching_records",
    "TrainSettings", "cpu_runtime_note", "loss_history", "make_trainer", "mixed_precision", "run_fingerprint", "train",
]
