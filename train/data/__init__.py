"""Datasets: the synthetic action set, decoding, index loaders, samplers and the clip dataset."""

from train.data.datasets import (
    ClipDataset,
    PairedClips,
    VideoItem,
    clip_dataset,
    dataset_from_dir,
    load_folder_per_class,
    load_hmdb_split,
    load_list_file,
    load_ucf_split,
)
from train.data.decode import VideoDecodeError, read_video
from train.data.samplers import clip_indices, frame_indices, tsn_indices

__all__ = ["ClipDataset", "PairedClips", "clip_dataset", "VideoItem", "VideoDecodeError", "clip_indices", "dataset_from_dir", "frame_indices",
           "load_folder_per_class", "load_hmdb_split", "load_list_file", "load_ucf_split", "read_video",
           "tsn_indices"]
