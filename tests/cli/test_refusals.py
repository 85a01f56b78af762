"""Refusals before work (docs/refusals.md): every argument error ``run``, ``sensitivity`` and ``gate`` can
know from their arguments and the files they name exits 2 with one line naming the option and the file,
writes nothing, and comes before torch, coremltools or transformers is imported (the robust form of
"under 2 s": benchmarks/bench_refusals.py times them). A stopped run leaves no staging folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from verification.release import checkpoint_files, decoder_args, staging
from verification.release.cli import main
from verification.release.gguf_header import BLOCKS, read_header

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "coremltools", "transformers")


def _safetensors(path: Path) -> None:
    """A one-tensor safetensors file written by hand (its header is all the refusals read)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")


def _gguf(path: Path, *, context: int = 32, tokenizer: bool = True, arch: str = "llama") -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(context)
    if tokenizer:
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(["a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.zeros((3, 8), np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((64,), np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refusals")
    made = {"llama": root / "llama-no-tokenizer", "bert": root / "bert"}
    made["llama"].mkdir()
    (made["llama"] / "config.json").write_text(
        json.dumps(
            {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 64}
        )
    )
    _safetensors(made["llama"] / "model.safetensors")
    made["bert"].mkdir()
    (made["bert"] / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "architectures": ["BertForSequenceClassification"],
                "max_position_embeddings": 32,
            }
        )
    )
    _safetensors(made["bert"] / "model.safetensors")
    made["gguf"] = _gguf(root / "tiny.gguf")
    data = made["gguf"].read_bytes()
    made["gguf100"] = root / "short.gguf"
    made["gguf100"].write_bytes(data[:100])
    made["gguf_cut"] = root / "cut.gguf"
    made["gguf_cut"].write_bytes(data[:-1])  # one byte of tensor data missing
    made["not_gguf"] = root / "text.gguf"
    made["not_gguf"].write_bytes(b"this is not a GGUF file at all, just text" * 4)
    made["v1"] = root / "v1.gguf"
    made["v1"].write_bytes(data[:4] + (1).to_bytes(4, "little") + data[8:])
    made["gguf_no_tokenizer"] = _gguf(root / "no-tokenizer.gguf", tokenizer=False)
    made["gguf_gpt2"] = _gguf(root / "gpt2.gguf", arch="gpt2")
    made["bad_report"] = root / "report.json"
    made["bad_report"].write_text('{"checks": [')
    made["bad_config"] = root / "thresholds.toml"
    made["bad_config"].write_text("[tool.ane-verify.thresholds]\ntorch_parity_psnr_db = 'high'\n")
    return made


# (arguments, with {name} replaced by files[name] and {out} by the output directory; what the one line
# must contain: the option, and the file where there is one)
CASES = {
    "context beyond max positions": (
        "run smollm2 --context 100000 --out {out}",
        ["--context", "100000", "maximum of 8192"],
    ),
    "context beyond a checkpoint's positions": (
        "run --weights {llama} --context 65 --prefill-len 8 --new-tokens 4 --out {out}",
        ["--context", "65", "maximum of 64", "{llama}"],
    ),
    "context beyond a gguf's context_length": (
        "run --weights {gguf} --context 33 --prefill-len 8 --new-tokens 4 --out {out}",
        ["--context", "33", "maximum of 32", "{gguf}"],
    ),
    "new tokens past the context": (
        "run smollm2 --context 100 --prefill-len 90 --new-tokens 20 --out {out}",
        ["--new-tokens", "--context 100"],
    ),
    "text without a tokenizer (directory)": (
        "run --weights {llama} --text hello --context 32 --prefill-len 8 --new-tokens 4 --out {out}",
        ["--text", "{llama}", "no tokenizer"],
    ),
    "text without a tokenizer (gguf)": (
        "run --weights {gguf_no_tokenizer} --text hello --context 32 --prefill-len 8 --new-tokens 4 "
        "--out {out}",
        ["--text", "{gguf_no_tokenizer}", "no tokenizer"],
    ),
    "text with the seeded smollm2": ("run smollm2 --text hello --out {out}", ["--text", "seeded smollm2"]),
    "100-byte gguf": ("run --weights {gguf100} --out {out}", ["--weights", "{gguf100}", "truncated"]),
    "gguf one byte short": ("run --weights {gguf_cut} --out {out}", ["--weights", "{gguf_cut}", "truncated"]),
    "not a gguf": ("run --weights {not_gguf} --out {out}", ["--weights", "{not_gguf}", "not a GGUF file"]),
    "gguf version 1": ("run --weights {v1} --out {out}", ["--weights", "{v1}", "version 1"]),
    "gguf of another architecture": (
        "run --weights {gguf_gpt2} --out {out}",
        ["--weights", "{gguf_gpt2}", "gpt2"],
    ),
    "missing gguf": ("run --weights {out}.gguf --out {out}", ["--weights", "{out}.gguf", "no such file"]),
    "seq-len beyond max positions": (
        "run distilbert --seq-len 100000 --out {out}",
        ["--seq-len", "100000", "512"],
    ),
    "seq-len beyond a checkpoint's positions": (
        "run --weights {bert} --seq-len 33 --out {out}",
        ["--seq-len", "33", "maximum of 32"],
    ),
    "bad compression config": ("run distilbert --compress palettize:7 --out {out}", ["--compress"]),
    "bad threshold file": (
        "run distilbert --config {bad_config} --out {out}",
        ["{bad_config}", "torch_parity_psnr_db"],
    ),
    "sensitivity seq-len": (
        "sensitivity distilbert --compress-config palettize:4 --seq-len 100000 --out {out}",
        ["--seq-len", "100000", "512"],
    ),
    "sensitivity config": (
        "sensitivity distilbert --compress-config palettize:99 --out {out}",
        ["--compress-config", "99"],
    ),
    "sensitivity examples": (
        "sensitivity distilbert --compress-config palettize:4 --examples 0 --out {out}",
        ["--examples"],
    ),
    "sensitivity weights": (
        "sensitivity --weights {llama} --compress-config palettize:4 --out {out}",
        ["--weights", "{llama}", "decoder"],
    ),
    "gate report not JSON": ("gate {bad_report}", ["report", "{bad_report}", "not valid JSON"]),
    "gate report missing": ("gate {out}/report.json", ["report", "{out}/report.json", "no file"]),
}


def _fill(text: str, files: dict, out: Path) -> str:
    return text.format(out=out, **files)


class Built(BaseException):
    """A model was about to be built: the refusal did not come (a BaseException, so that no handler turns
    it into a one-line error; a missed --context check would otherwise build until memory runs out)."""


@pytest.fixture
def nothing_is_built(monkeypatch):
    from verification.release import decoder_zoo, model_zoo

    def forbidden(name):
        def fail(*args, **kwargs):
            raise Built(f"{name} was called: the refusal came too late")

        return fail

    for module, name in (
        (model_zoo, "embedded"),
        (model_zoo, "from_directory"),
        (decoder_zoo, "seeded_smollm2"),
        (decoder_zoo, "from_weights"),
    ):
        monkeypatch.setattr(module, name, forbidden(f"{module.__name__}.{name}"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_refusal_is_one_line_exit_2_and_writes_nothing(case, files, tmp_path, capsys, nothing_is_built):
    arguments, expected = CASES[case]
    out = tmp_path / "out"
    code = main(_fill(arguments, files, out).split())
    err = capsys.readouterr().err
    assert code == 2, (case, code, err)
    assert err.startswith("ane-verify: error: ") and err.count("\n") == 1, (case, err)
    assert "Traceback" not in err
    for piece in expected:
        assert _fill(piece, files, out) in err, (case, piece, err)
    assert not out.exists(), (case, sorted(out.iterdir()))


def test_no_refusal_imports_torch_coremltools_or_transformers(files, tmp_path):
    """Every case in one fresh interpreter where importing a heavy library stops the case (so a refusal
    that comes too late is reported, never run): each must refuse with none of them imported."""
    runs = {case: _fill(arguments, files, tmp_path / "out").split() for case, (arguments, _) in CASES.items()}
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys

        class Heavy(BaseException):
            pass

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HEAVY!r}:
                    raise Heavy(name)

        sys.meta_path.insert(0, Block())
        from verification.release.cli import main
        result = {{}}
        for case, argv in json.loads(sys.argv[1]).items():
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    code = main(argv)
                result[case] = [code, []]
            except Heavy as heavy:
                result[case] = [None, [str(heavy)]]
        print(json.dumps(result))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(runs)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    imported = {case: loaded for case, (code, loaded) in result.items() if loaded}
    assert not imported, f"refusals that import a heavy library before refusing: {imported}"
    assert {case: code for case, (code, _) in result.items() if code != 2} == {}


def test_a_refusal_from_a_real_process_is_one_line_without_a_traceback(files, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "verification", "run", "--weights", str(files["gguf100"]), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout)
    assert done.stderr.count("\n") == 1 and str(files["gguf100"]) in done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.parametrize("seeded", [True, False])
def test_context_at_the_maximum_is_accepted_and_one_more_refused(seeded, files):
    """The boundary on both sides, on the validation alone (a run at 8192 slots would be large)."""
    weights = decoder_args.inspect_weights(None if seeded else str(files["gguf"]))
    longest = weights.max_positions
    assert longest == (8192 if seeded else 32)
    options = decoder_args.DecoderOptions(
        model="smollm2" if seeded else None,
        weights=None if seeded else str(files["gguf"]),
        prefill_len=8,
        new_tokens=4,
        context=longest,
    )
    decoder_args.check_options(options, weights)
    options.context = longest + 1
    with pytest.raises(
        checkpoint_files.ModelInputError, match=f"--context: {longest + 1} exceeds .* {longest}"
    ):
        decoder_args.check_options(options, weights)


def test_seq_len_at_the_maximum_is_accepted_and_one_more_refused(files, tmp_path):
    from verification.release import preflight
    from verification.release.context import RunOptions

    plan = preflight.plan(RunOptions(None, weights=str(files["bert"]), seq_len=32, out=tmp_path / "out"))
    assert plan.max_seq_len == 32
    with pytest.raises(checkpoint_files.ModelInputError, match="--seq-len: 33 exceeds"):
        preflight.plan(RunOptions(None, weights=str(files["bert"]), seq_len=33, out=tmp_path / "out"))


def test_the_gguf_header_reader_agrees_with_the_gguf_package(files):
    from gguf import GGUFReader
    from gguf.constants import GGML_QUANT_SIZES

    for kind, sizes in BLOCKS.items():
        assert tuple(GGML_QUANT_SIZES[kind]) == sizes, (kind, sizes, GGML_QUANT_SIZES[kind])
    header, reader = read_header(files["gguf"]), GGUFReader(files["gguf"])
    assert header.tensor_count == len(reader.tensors) == 2
    assert (header.architecture, header.context_length, header.tokenizer) == ("llama", 32, True)
    end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    assert end == files["gguf"].stat().st_size, (end, files["gguf"].stat().st_size)


def test_the_light_copies_match_what_they_copy():
    """Tables copied so that refusals need no torch: ane_models' heads and decoder types, the decoder
    conversion's cache forms."""
    import ane_models
    from verification.decoders import conversion

    encoders = {t: n for t, n in ane_models.supported_models().items() if t not in ane_models.DECODER_TYPES}
    assert checkpoint_files._supported_heads() == encoders
    assert set(checkpoint_files.DECODER_TYPES) == set(ane_models.DECODER_TYPES)
    assert checkpoint_files.DIFFERENT == ane_models.roberta.DIFFERENT
    assert decoder_args.CACHE_FORMS == conversion.CACHE_FORMS


# --- staging folders of stopped and killed runs ---


def test_a_leftover_of_a_killed_run_is_removed_by_the_next_run_and_said(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    dead = out / f"{staging.PREFIX}999999999-abc"  # above any pid_max: no such process
    old_style = out / f"{staging.PREFIX}k2j3h4"  # named before the pid was in the name
    alive = out / f"{staging.PREFIX}{os.getppid()}-xyz"  # a run still going (the parent process)
    for folder in (dead, old_style, alive):
        (folder / "model.mlpackage").mkdir(parents=True)
    new = staging.create(out)
    err = capsys.readouterr().err
    assert not dead.exists() and not old_style.exists(), sorted(out.iterdir())
    assert alive.exists() and new.is_dir() and new.name.startswith(f"{staging.PREFIX}{os.getpid()}-")
    assert err.count("\n") == 1 and "removed 2 staging folder(s)" in err and dead.name in err, err


def test_the_run_command_removes_leftovers_and_a_signal_leaves_nothing(files, tmp_path, capsys, monkeypatch):
    """In process: a planted leftover, then a run whose first stage gets SIGTERM."""
    from verification.release import pipeline

    out = tmp_path / "out"
    out.mkdir()
    (out / "older.txt").write_text("from an earlier run")
    (out / f"{staging.PREFIX}999999999-abc").mkdir()
    seen = []

    def terminated(ctx):
        seen.append(sorted(p.name for p in out.iterdir()))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this returns
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(pipeline, "STAGE_FUNCTIONS", (terminated, *pipeline.STAGE_FUNCTIONS[1:]))
    previous = signal.getsignal(signal.SIGTERM)
    code = main(["run", "--weights", str(files["bert"]), "--seq-len", "8", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 143, err
    assert signal.getsignal(signal.SIGTERM) == previous, "the CLI leaves the handlers as it found them"
    assert "removed 1 staging folder(s)" in err and "stopped by SIGTERM" in err, err
    assert len(seen[0]) == 2 and seen[0][0].startswith(f"{staging.PREFIX}{os.getpid()}-"), seen
    assert sorted(p.name for p in out.iterdir()) == ["older.txt"]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_real_run_stopped_mid_way_leaves_no_staging_folder(signum, code, tmp_path):
    """A real process (the embedded reference Transformer): signalled once its staging folder exists."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "older.txt").write_text("kept")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "verification", "run", "reference", "--seq-len", "8", "--backend", "mil"]
    process = subprocess.Popen(
        [*argv, "--quiet", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(staging.PREFIX + "*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no staging folder within 120 s"
            time.sleep(0.05)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, (process.returncode, stderr)
    assert stderr.strip().count("\n") == 0 and f"stopped by {signal.Signals(signum).name}" in stderr, stderr
    assert sorted(p.name for p in out.iterdir()) == ["older.txt"]


def test_text_becomes_the_causal_lm_prompt_where_there_is_a_tokenizer(files, tmp_path):
    """``--text`` was silently ignored for causal LMs; with a tokenizer it is now the prompt."""
    from verification.release.cli import build_parser
    from verification.release.refusals import check_run

    argv = ["run", "--weights", str(files["gguf"]), "--text", "hello there", "--context", "32"]
    args = build_parser().parse_args(
        [*argv, "--prefill-len", "8", "--new-tokens", "4", "--out", str(tmp_path)]
    )
    args.exporter_given, args.exporter = False, "trace"
    checked = check_run(args)
    assert checked.decoder and checked.options.text == "hello there", checked.options


def test_a_signal_before_the_pipeline_cleanup_still_removes_this_process_staging_folder(tmp_path):
    """A signal landing between a staging folder's creation and the pipeline's try block (seen under load)."""
    own = Path(staging.create(tmp_path))
    other = tmp_path / f"{staging.PREFIX}1-someone-else"
    other.mkdir()
    staging.remove_own(tmp_path)
    assert not own.exists() and other.is_dir(), sorted(p.name for p in tmp_path.iterdir())
