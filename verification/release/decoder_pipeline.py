"""``ane-verify run smollm2`` (or ``--weights`` pointing at a causal LM): build the transformers model and
its ANE twin, convert both functions (prefill, decode) into one package, verify the program step by step,
and write the same reports as for encoders, with the per-step plot and the generated text.

Artifacts are written to a staging directory inside the output directory and moved into place only when
the run completes, as for encoders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import ane_models
from verification.decoders import conversion
from verification.decoders.checks import reference_logits
from verification.decoders.program_lm import ProgramCausalLM
from verification.decoders.readiness import function_readiness
from verification.metrics import psnr

from . import decoder_args, decoder_checks, decoder_zoo
from .context import judged_check
from .decoder_args import DecoderOptions  # noqa: F401 (re-exported)
from .model_zoo import ModelInputError
from .pipeline import REPORT_FILES, _target_config, publish_report, staged_output
from .resources import StageMeter, fp32_weight_bytes

STAGES = (
    "build causal LM and its ANE twin",
    "torch parity",
    "convert prefill + decode",
    "program step by step",
    "fp16 hazards, a step at a time",
    "readiness per function",
    "placement and tokens per second",
    "gate",
)
DEFAULT_PROMPT = "The capital of France is"  # where the checkpoint has a tokenizer and no --text is given
PROMPT_SEED = 0  # random prompt token ids where there is no tokenizer


def check_options(o: DecoderOptions) -> None:
    """Every option checked before anything is built (exit 2 from the CLI, nothing written)."""
    decoder_args.check_options(o)


def _prompt(source, o: DecoderOptions) -> tuple[torch.Tensor, dict]:
    """The prompt's token ids and, for the report's provenance, where they came from."""
    lengths = {"prefill_len": o.prefill_len, "context": o.context, "new_tokens": o.new_tokens}
    if source.tokenizer is not None:
        text = o.text if o.text is not None else DEFAULT_PROMPT
        ids = source.tokenizer(text, return_tensors="pt").input_ids[:, : o.prefill_len].long()
        origin = "--text" if o.text is not None else "default text"
        return ids, {"source": origin, "text": text, "tokens": ids.shape[1], **lengths}
    if o.text is not None:
        raise ModelInputError(
            f"--text: {source.origin!r} has no tokenizer to read it with; run without --text "
            "(random token ids)"
        )
    vocab = source.hf_model.config.vocab_size
    generator = torch.Generator().manual_seed(PROMPT_SEED)
    ids = torch.randint(0, vocab, (1, o.prefill_len), generator=generator)
    return ids, {"source": "seed", "seed": PROMPT_SEED, "tokens": o.prefill_len, **lengths}


def run(o: DecoderOptions, progress: Callable[[int, str, float | None], None] = lambda *a: None) -> dict:
    from verification.coreml.predict import resolve_backend

    check_options(o)
    backend = resolve_backend(o.backend)
    out = Path(o.out)
    from ..coreml import program_cache  # imports coremltools: before the staging folder exists

    cache_events = len(program_cache.EVENTS)
    checks, details, meter = [], {}, StageMeter()

    def stage(index, body, *args, **kwargs):
        progress(index, STAGES[index], None)
        with meter.stage(STAGES[index]):
            result = body(*args, **kwargs)
        progress(index, STAGES[index], meter.stages[-1]["seconds"])
        return result

    def judge(name, metric, value, reason=None) -> dict:
        checks.append(judged_check(name, metric, value, _Ctx(o), reason=reason))
        return checks[-1]

    with staged_output(out) as staging:
        source = stage(
            0, lambda: decoder_zoo.from_weights(o.weights) if o.weights else decoder_zoo.seeded_smollm2()
        )
        hf = source.hf_model
        lm = ane_models.optimize(hf, cache_capacity=o.context, prefill_length=o.prefill_len)
        prompt, prompt_origin = _prompt(source, o)
        # what the report says of the models, read now: both are released once converted
        weight_bytes, source_info = fp32_weight_bytes(hf), decoder_zoo.source_section(source, prompt_origin)

        def torch_parity(hf, lm):
            tokens, reference = reference_logits(hf, prompt, o.new_tokens)
            lm.reset_cache()
            got = lm.prefill(prompt)[0]
            value = psnr(reference[: prompt.shape[1]].numpy(), got.numpy())
            judge(
                "torch_parity_psnr_db",
                "PSNR of the ANE torch model's prefill logits vs transformers, fp32",
                round(value, 2),
            )
            return tokens, reference

        tokens, reference = stage(1, torch_parity, hf, lm)
        # memory follows the weights: the reference model's outputs are recorded, conversion reads lm only
        del hf
        source.hf_model = None
        package = staging / f"{source.name}_{o.cache}_{o.precision}.mlpackage"
        converted = stage(
            2,
            conversion.convert_decoder,
            lm,
            package,
            cache=o.cache,
            precision=o.precision,
            prefill_length=o.prefill_len,
        )
        if converted.processes["tree_peak_mb"] is not None:  # the functions were converted in children
            meter.include_children(converted.processes["tree_peak_mb"])
        details["package"] = {
            "bytes": converted.package_bytes,
            "conversion_seconds": converted.seconds,
            "conversion_processes": converted.processes,
            "cache": o.cache,
            "functions": list(conversion.FUNCTIONS),
        }
        decoder_config = lm.decoder_config
        del lm  # from here on only the package's programs hold the weights
        program = ProgramCausalLM(converted.path, decoder_config, backend=backend)

        def step_by_step(program):
            text = prompt_origin.get("text") if source.tokenizer is not None else None
            tokenizer = source.tokenizer
            decoder_checks.step_checks(program, prompt, tokens, reference, judge, details, tokenizer, text)

        stage(3, step_by_step, program)
        del program  # the hazard finder builds its own executors of each function
        stage(4, lambda: decoder_checks.hazards(converted, o, prompt, judge, details))
        stage(5, lambda: details.__setitem__("readiness_per_function", function_readiness(converted.path)))
        stage(6, lambda: decoder_checks.device_checks(converted.path, backend, o, prompt, judge, details))
        progress(7, STAGES[7], None)
        details["stages"] = meter.stages
        details["memory"] = meter.memory_section(weight_bytes)
        details["program_cache"] = program_cache.summary(cache_events)
        artifacts = {
            "mlpackage": str(out / package.name),
            **{key: str(out / name) for key, name in REPORT_FILES.items()},
        }
        return publish_report(
            staging,
            out,
            model=source.name if source.origin == "seeded" else source.origin,
            config={
                "seq_len": o.prefill_len,
                "batch_size": 1,
                "precision": o.precision,
                "exporter": "trace",
                "backend": backend,
                "cache": o.cache,
                "context": o.context,
                "new_tokens": o.new_tokens,
                **_target_config("coreml", backend),
            },
            source=source_info,
            checks=checks,
            artifacts=artifacts,
            details=details,
        )


@dataclass
class _Ctx:
    """What ``judged_check`` reads of an encoder run's context."""

    options: DecoderOptions
    built: object = None
