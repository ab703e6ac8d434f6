"""Configuration: TOML parsed once, at the edge, into frozen dataclasses.

Each section is a dataclass; its fields carry their type, default and limits, and the loader
checks every key against them. An error names the file and the dotted key, e.g.
``counterd.toml: detector.confidence: must be <= 1, got 1.5``.
"""
from counterd.config.fields import ConfigError, CredentialUrl, Secret, redact, redact_url, setting
from counterd.config.load import config_from_dict, config_to_dict, load_config
from counterd.config.sections import (
    CameraConfig, MotionConfig, DetectorConfig, TrackerConfig, CountingConfig, SourceConfig,
    GatingConfig, DaemonConfig, StoreConfig, UserConfig, ApiConfig, OccupancyConfig,
    AlertsConfig, LineConfig, UploadConfig, MqttConfig, Config, frame_problems,
)

__all__ = [
    'ConfigError', 'CredentialUrl', 'Secret', 'redact', 'redact_url', 'setting', 'config_from_dict', 'config_to_dict', 'load_config',
    'CameraConfig', 'MotionConfig', 'DetectorConfig', 'TrackerConfig', 'CountingConfig',
    'SourceConfig', 'GatingConfig', 'DaemonConfig', 'StoreConfig', 'UserConfig', 'ApiConfig',
    'OccupancyConfig', 'AlertsConfig', 'LineConfig', 'UploadConfig', 'MqttConfig', 'Config', 'frame_problems',
]
