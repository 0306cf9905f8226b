"""Run one training config under torchrun and save this rank's final weights.

Usage: torchrun --nproc_per_node N ddp_worker.py CONFIG OUT_DIR. The library's own entry
point saves weights from rank 0 only; the DDP test needs every rank's copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from synthlm.train import load_run_config
from synthlm.train.accel import distributed_state
from synthlm.train.loop import Trainer
from synthlm.train.planners import plan_run


def main(config_path: str, out_dir: str) -> None:
    state = distributed_state()
    config = load_run_config([config_path])
    trainer = Trainer(plan_run(config, state.num_processes), progress=False)
    trainer.start(None)
    trainer.fit()
    weights = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    save_file(
        {k: v.contiguous() for k, v in weights.items()},
        str(Path(out_dir) / f"rank{state.process_index}.safetensors"),
    )
    print(
        f"rank {state.process_index}: backend={state.backend} "
        f"distributed_type={state.distributed_type}"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
