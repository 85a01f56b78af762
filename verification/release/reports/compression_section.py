"""The compression section of report.html (and the page ``ane-verify sensitivity`` writes): the
three-way split of the loss, weight sizes, published ANE support, and the per-layer sensitivity plot."""

from __future__ import annotations

from html import escape

from . import plots


def _rows(header: tuple, rows: list[tuple]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compression_html(details: dict) -> list[str]:
    three, before, after = details["three_way"], details["size_before"], details["size_after"]
    task = three["task_metric"]
    rows = [
        ("fake-compressed torch vs torch fp32 (compression loss)", *_side(three["fake_compressed_vs_torch"])),
        ("uncompressed program vs torch fp32 (conversion + fp16)", *_side(three["uncompressed_vs_torch"])),
        ("compressed program vs torch fp32 (all)", *_side(three["compressed_vs_torch"])),
        ("compressed program vs fake-compressed torch", three["compressed_vs_fake_compressed_psnr_db"], "-"),
    ]
    sizes = [
        ("compressible weights", before["weights"], after["weights"]),
        ("their bytes", before["stored_bytes"], after["stored_bytes"]),
        ("bits per weight", before["bits_per_weight"], after["bits_per_weight"]),
        (
            "static weight memory (every constant, bytes)",
            before["program_weight_bytes"],
            after["program_weight_bytes"],
        ),
    ]
    support = [(r["form"], r["published"], r["source"]) for r in details.get("ane_support", [])]
    return [
        f"<h2>Compression: {escape(details['recipe']['source'])}</h2>",
        _rows(("comparison", "PSNR (dB)", task), rows),
        f"<p>{three['weights_mapped']} weights mapped to torch parameters "
        f"({three['weights_mapped_by_scope']} "
        f"by torch scope, the rest by content); {three['weights_unmatched']} unmatched.</p>",
        _rows(("weights", "before", "after"), sizes),
        "<h3>Published Neural Engine support of these forms</h3>",
        _rows(("form", "published", "source"), support),
    ]


def _side(side: dict) -> tuple:
    return side["psnr_db"], "-" if side["agreement"] is None else side["agreement"]


def sensitivity_html(result: dict, top: int = 40) -> list[str]:
    """The ranking as a bar plot of the dB each layer's compression costs and as a table (with the config
    the mixed-bit recipe gives each layer), why a cost is below zero, and the mixed-bit result."""
    layers = result["layers"][:top]
    mixed = result.get("mixed_bit") or {}
    chosen = mixed.get("layer_configs", {})
    parts = [
        f"<h2>Per-layer sensitivity at {escape(result['config'])}</h2>",
        f"<p>uncompressed program {result['baseline_psnr_db']} dB vs torch fp32; every layer compressed "
        f"{result['all_compressed_psnr_db']} dB; measured on {result.get('inputs', '?')} inputs "
        f"({result.get('output_values', '?')} output values); {result['seconds']} s.</p>",
        plots.horizontal_bars(
            f"dB lost by compressing one layer at {result['config']}",
            [c["layer"] for c in layers],
            [c["cost_db"] for c in layers],
            unit="dB",
        ),
    ]
    if result.get("noise_note"):
        parts.append(f"<p><b>Costs below zero:</b> {escape(result['noise_note'])}</p>")
    header = ["layer (torch module path)", "cost (dB)", "PSNR vs torch (dB)", "PSNR vs uncompressed (dB)"]
    rows = [
        (c["layer"], c["cost_db"], c["psnr_db"], c.get("psnr_vs_uncompressed_program_db", "-"))
        for c in result["layers"]
    ]
    if chosen:
        header.append("mixed recipe")
        rows = [(*row, chosen.get(row[0], "-")) for row in rows]
    parts.append(_rows(tuple(header), rows))
    if mixed:
        by_config: dict[str, list[str]] = {}
        for layer, config in chosen.items():
            by_config.setdefault(config, []).append(layer)
        parts += [
            "<h3>Mixed-bit recipe (mixed_recipe.toml)</h3>",
            _rows(
                (
                    "target (dB)",
                    "measured (dB)",
                    "met",
                    "fallback layers",
                    "bytes",
                    "all at config",
                    "all at fallback",
                ),
                [
                    (
                        mixed["target_psnr_db"],
                        mixed["measured_psnr_db"],
                        mixed["met"],
                        len(mixed["fallback_layers"]),
                        mixed["stored_bytes"],
                        mixed["all_config_bytes"],
                        mixed["all_fallback_bytes"],
                    )
                ],
            ),
            _rows(
                ("config", "layers", "how many"),
                [(config, ", ".join(names), len(names)) for config, names in by_config.items()],
            ),
        ]
    return parts


def sensitivity_page(result: dict, title: str) -> str:
    body = "\n".join(sensitivity_html(result))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
