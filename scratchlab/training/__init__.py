"""Training engines: GPT pre-training, ablations and LoRA fine-tuning, on one shared core.

- runs: `trainer` (GPT, DDP via torchrun), `ablate`, `lora` (peft LoRA, DDP via torchrun);
- settings: `gpt_config.TrainConfig`, `lora_config.LoraTrainConfig` (each hyperparameter written once,
  with default, bounds and help: `fields.setting`), `settings` (tool schemas, CLI options, defaults,
  diff against defaults, all generated from the configs);
- the core both runs use: `schedule`, `precision`, `checkpoint`, `report`, `loop`, `ddp`, `estimate`;
- data and models: `data`, `batches`, `gpt_io`, `lora_data` (`lora_format`, `lora_batches`),
  `lora_base`, `hf_base`, `lora_model`, `lora_eval`, `lora_adapters`, `lora_estimate`, `plots`.
"""
