"""The ``edgewatch`` command: argument parsing and error reporting only.

Each subcommand's work lives in the module named in ``_HANDLERS`` and is imported only when
that subcommand runs, so ``edgewatch --help`` never imports onnxruntime, let alone torch.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 141 (128 + SIGPIPE, as for other
Unix tools) when the reader of the output went away (``edgewatch ... --json | head``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge.cli import alerts as alerts_cli  # argparse only; the work is imported when it runs
from edge.cli import export_args
from edge.cli import fleet as fleet_cli
from edge.errors import EdgewatchError, UsageError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
_SIGPIPE_EXIT = 141

# subcommand -> "module:function" taking the parsed arguments and returning an exit code
_HANDLERS: dict[str, str] = {
    "version": "edge.cli.info:version",
    "config check": "edge.cli.info:config_check",
    "bundle inspect": "edge.cli.info:bundle_inspect",
    "bundle verify": "edge.cli.info:bundle_verify",
    "bundle keygen": "edge.cli.info:bundle_keygen",
    "bundle sign": "edge.cli.info:bundle_sign",
    "labels list": "edge.cli.labels:list_labels",
    "labels add": "edge.cli.labels:add",
    "labels remove": "edge.cli.labels:remove",
    "export": "export.command:export_command",
    "enroll": "edge.cli.vision:enroll",
    "capture": "edge.cli.capture:capture_command",
    "check": "edge.cli.check:check",
    "vibration analyze": "edge.cli.vibration:analyze",
    "run": "edge.cli.service:run",
    "history": "edge.cli.service:history",
    "alerts": "edge.cli.alerts:alerts",
    "doctor": "edge.cli.service:doctor",
    "install-service": "edge.cli.service:install_service",
    "demo": "edge.cli.demo:demo",
    "eval": "edge.cli.evaluate:evaluate",
    "bench": "bench.command:bench",
    "image build": "board.command:image_build",
    "image wheelhouse": "board.command:image_wheelhouse",
    "image bundle": "board.command:image_bundle",
    "fleet targets": "edge.cli.fleet:targets",
    "fleet install": "edge.cli.fleet:install",
    "fleet rollout": "edge.cli.fleet:rollout",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError (exit 2) instead of printing itself."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _add_enroll(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enroll",
        help="Build an asset profile from normal frames and labelled examples.",
        description="Embed frames of the machine in good condition (normal baseline) and optional "
        "labelled examples (few-shot), calibrate thresholds, and write a profile file atomically.",
    )
    p.add_argument("--bundle", type=Path, help="Model bundle folder (default: the model in --config).")
    p.add_argument("--normal", required=True, type=Path, help="Folder of frames of the machine in good condition "
                   "(with --capture: an empty folder the captured frames are saved to).")
    p.add_argument("--config", type=Path, help="Config file: the bundle and, with --capture, the asset's cameras.")
    p.add_argument("--asset", help="Asset id in --config whose cameras --capture uses.")
    p.add_argument("--camera", help="Only this camera of the asset (default: all of them).")
    p.add_argument("--capture", type=int, metavar="N",
                   help="First capture N fit frames per camera from the configured camera(s) into --normal.")
    p.add_argument("--every", type=float, default=1.0, metavar="S", help="Seconds between captured frames.")
    p.add_argument("--label", action="append", default=[], metavar="NAME=DIR",
                   help="Labelled examples for few-shot scoring (repeatable); NAME:SEVERITY=DIR sets "
                   "ok|warning|fault (default: the bundle label's severity, else warning).")
    p.add_argument("--out", required=True, type=Path, help="Profile file to write.")
    p.add_argument("--force", action="store_true", help="Replace --out if it is a profile (other files never).")
    p.add_argument("--roi", metavar="REGION",
                   help="Judge only this part of each frame, as the camera's 'roi' does: 'left,top,right,bottom' "
                        "or polygon corners 'x,y x,y x,y ...', in fractions of the frame.")
    p.add_argument(
        "--anomaly-prior",
        type=float,
        default=0.5,
        metavar="P",
        help="Share of frames expected to be anomalous, in (0, 1): the prior behind p_anomaly. "
        "Lower it for a machine that is rarely abnormal (fewer false alarms, later detection).",
    )


def _add_capture(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capture",
        help="Save enrolment frames from an asset's configured cameras.",
        description="Grab frames through the same camera path the service uses, skip black, blurred and "
        "frozen frames (the asset's camera health thresholds), and save the fit ones as PNG files.",
    )
    p.add_argument("--config", required=True, type=Path, help="Config file.")
    p.add_argument("--asset", required=True, help="Asset id whose cameras to capture from.")
    p.add_argument("--camera", help="Only this camera of the asset (default: all of them).")
    p.add_argument("--count", type=int, default=20, metavar="N", help="Fit frames to save per camera.")
    p.add_argument("--every", type=float, default=1.0, metavar="S", help="Seconds between grabs.")
    p.add_argument("--out", required=True, type=Path, help="Folder to save the frames to (created).")


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="Score one image (and sensor readings) and print the verdict.",
        description="Run every vision head on one image, fuse with sensor readings when given, "
        "and escalate to the cloud model when the policy says so (or --escalate).",
    )
    p.add_argument("--bundle", required=True, type=Path, help="Model bundle folder.")
    p.add_argument("--profile", type=Path, help="Asset profile from 'edgewatch enroll'.")
    p.add_argument("--image", required=True, type=Path, help="Image file to score.")
    p.add_argument("--sensors", type=Path, help="Sensor readings JSON (see docs/sensors-json.md).")
    p.add_argument("--config", type=Path, help="Config file for fusion and escalation settings.")
    p.add_argument("--asset", help="Asset id in --config whose settings apply.")
    p.add_argument("--escalate", action="store_true", help="Ask the cloud model whatever the local confidence.")
    p.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")


def _add_vibration(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vibration", help="Vibration analytics on recordings.")
    vsub = p.add_subparsers(dest="vibration_command", metavar="COMMAND", required=True, parser_class=_Parser)
    a = vsub.add_parser(
        "analyze",
        help="Analyse one accelerometer recording (npy, csv, wav).",
        description="Velocity RMS and ISO zone, envelope analysis and bearing defect frequencies.",
    )
    a.add_argument("file", type=Path, help="Recording in g (npy, csv or wav).")
    a.add_argument("--fs", type=float, help="Sample rate in Hz (required unless the file carries it).")
    a.add_argument("--rpm", type=float, required=True, help="Nominal shaft speed in rpm.")
    a.add_argument("--rpm-range", type=float, default=0.08, metavar="FRACTION",
                   help="Find the true speed from the signal within this fraction of --rpm (0: --rpm is exact).")
    a.add_argument("--measured-rpm", type=float, metavar="RPM", help="Shaft speed from a tachometer or VFD.")
    group = a.add_mutually_exclusive_group()
    group.add_argument("--bearing", help="Bearing from the built-in catalogue, e.g. 6205.")
    group.add_argument("--multiples", help="Defect frequencies as multiples of shaft speed: BPFO,BPFI,BSF,FTF.")
    a.add_argument("--machine-group", choices=["1", "2"], default="2", help="ISO 10816-3 machine group.")
    a.add_argument("--foundation", choices=["rigid", "flexible"], default="rigid")
    a.add_argument("--reference", type=Path, metavar="HEALTHY",
                   help="A recording of the same machine in good order (same sensor and speed, at least 3 s): "
                        "velocity and bearing-band acceleration are judged against it, as the service judges "
                        "against its learned normal.")
    a.add_argument("--reference-fs", type=float, metavar="HZ",
                   help="Sample rate of --reference when it differs from --fs (it is resampled down).")
    a.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")


def _add_service(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="Run the monitoring service (what systemd starts).",
        description="Grab frames, read sensors, score, fuse, escalate and publish for every asset "
        "in the config until SIGTERM.",
    )
    p.add_argument("--config", required=True, type=Path, help="Config file.")
    p.add_argument("--max-checks", type=int, help="Stop after this many checks in total (testing, demos).")

    p = sub.add_parser("history", help="Read stored verdicts.")
    p.add_argument(
        "--config", type=Path, default=Path("/etc/edgewatch/config.yaml"), help="Config file (for the state folder)."
    )
    p.add_argument("--asset", help="Only this asset.")
    p.add_argument("--since", help="ISO time or a duration such as 2h, 3d.")
    p.add_argument("--limit", type=int, default=100, help="At most this many verdicts, newest first.")
    p.add_argument("--json", action="store_true", help="Print a JSON array on stdout.")

    p = sub.add_parser(
        "doctor", help="Check config, bundle, cameras, sensors, disk, clock and cloud; print a pass/fail table."
    )
    p.add_argument("--config", type=Path, default=Path("/etc/edgewatch/config.yaml"), help="Config file.")
    p.add_argument("--as-service", action="store_true",
                   help="Run the checks under the installed unit's sandbox, as its user (systemd-run; needs root).")

    p = sub.add_parser("install-service", help="Install the systemd unit, its device drop-in, user, config skeleton "
                       "and state folder.")
    p.add_argument("--config", type=Path, help="Open the devices this config uses (default the installed config).")
    p.add_argument("--dry-run", action="store_true", help="Print what would be done, the unit and the drop-in; "
                   "change nothing.")


def _add_demo_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="Run edgewatch end to end on the built-in demo data.",
        description="Export EfficientNet-Lite0 to INT8, enroll normal solar cells, replay cells and "
        "bearing vibration through fusion and escalation to an oracle cloud, and print a verdict table, a "
        "summary and the evaluation's headline.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="Working folder for the demo's files.")
    p.add_argument(
        "--frames",
        type=int,
        default=60,
        help="Checks in total, spread evenly over the six demo machines (>= 6, whole rounds).",
    )
    p.add_argument("--cwru", type=Path, help="Folder of CWRU records with a records.json, e.g. the full set "
                   "(default: the trimmed real records shipped in edge/cwru).")
    p.add_argument("--cloud-error-rate", type=float, default=0.0,
                   help="Share of frames the demo's oracle cloud answers wrongly on purpose (0..1).")
    p.add_argument("--seed", type=int, default=0,
                   help="Which cells each machine shows (and which the oracle answers wrongly): another seed, "
                   "another stream.")
    p.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")

    p = sub.add_parser(
        "eval",
        help="Score a run's verdicts against labels; compare local, always-cloud and the escalation policy.",
        description="Read the verdicts 'edgewatch run' stored for the labelled assets, ask an oracle cloud (a "
        "local OpenAI-compatible server answering from the labels) about every check at gpt-4o and gpt-4o-mini "
        "prices, and print accuracies, escalation rate, costs and the risk-coverage curve. See docs/evaluation.md.",
    )
    p.add_argument("--config", type=Path, required=True, help="The config the run used (its state_dir holds them).")
    p.add_argument("--labels", type=Path, required=True, help="Labels file (YAML or JSON), see docs/evaluation.md.")
    p.add_argument("--cloud-error-rate", type=float, default=0.0,
                   help="Share of frames the oracle answers wrongly on purpose (0..1).")
    p.add_argument("--seed", type=int, default=0, help="Which frames the oracle gets wrong.")
    p.add_argument("--policy", action="append", default=[], metavar="KEY=VALUE",
                   help="Decide the escalations again with this policy setting changed (repeatable), e.g. "
                   "confidence_below=0.7 or cooldown_s=0, instead of reading what the run's policy did.")
    p.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")

    p = sub.add_parser("bench", help="Benchmark INT8 ONNX vs FP32 ONNX vs PyTorch, and the sensor path.",
                       description="Export, enroll and time every model on every path. The full run (three models, "
                       "30 frames) took 79 minutes on two busy CPU cores (load average 27), --tiny 31 minutes.")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="Folder for results JSON and Markdown.")
    p.add_argument("--models", default="clip,siglip,efficientnet-lite0", help="Comma-separated models to run.")
    p.add_argument("--tiny", action="store_true", help="2-layer CLIP and SigLIP: a quick run, figures meaningless.")
    p.add_argument("--frames", type=int, default=30, help="Timed frames per model.")
    p.add_argument("--json", action="store_true", help="Print the results as JSON.")


def _add_labels(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labels", help="List, add or remove a bundle's zero-shot labels on the board.")
    lsub = p.add_subparsers(dest="labels_command", metavar="COMMAND", required=True, parser_class=_Parser)
    lsub.add_parser("list", help="Print each label, its severity and prompts.").add_argument("bundle", type=Path)
    a = lsub.add_parser(
        "add",
        help="Add a label, embedded with the bundle's INT8 text model (needs --with-text-model at export).",
        description="Embed the prompts with the bundle's text model and tokenizer (no torch), then update the "
        "bundle atomically; its hashes stay valid.",
    )
    a.add_argument("bundle", type=Path, help="Model bundle folder.")
    a.add_argument("--name", required=True, help="Label name, e.g. 'oil leak'.")
    a.add_argument("--severity", choices=["ok", "warning", "fault"], default="warning", help="What it means.")
    a.add_argument("--prompt", action="append", metavar="TEXT",
                   help="A sentence describing it (repeatable); default: three 'a photo of NAME' variants.")
    r = lsub.add_parser("remove", help="Remove a label (needs no text model).")
    r.add_argument("bundle", type=Path, help="Model bundle folder.")
    r.add_argument("--name", required=True, help="Label to remove.")
    for command in (a, r):  # a signed bundle is never left with a signature that no longer matches
        command.add_argument("--resign", type=Path, metavar="KEY", help="Private key that signs the changed "
                             "manifest (required for a signed bundle; $EDGEWATCH_KEY_PASSPHRASE as for 'bundle sign').")
def _add_image(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="Build a flashable arm64 image or an offline wheelhouse (workstation, as root).")
    isub = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True, parser_class=_Parser)
    b = isub.add_parser(
        "build",
        help="Write an arm64 disk image with edgewatch installed as a hardened service.",
        description="Build a minimal Debian arm64 system (mmdebstrap, cached in /var/cache/edgewatch-board), "
        "install edgewatch from an aarch64 wheelhouse, your config and its folders, and write a .img.",
    )
    b.add_argument("--config", required=True, type=Path, help="Config file; it becomes /etc/edgewatch/config.yaml.")
    b.add_argument("--with", dest="with_folder", action="append", default=[], type=Path, metavar="DIR",
                   help="A folder the config names by relative path (bundle, profiles, frames); repeatable.")
    b.add_argument("--out", required=True, type=Path, help="Image file to write (.img).")
    b.add_argument("--base", type=Path, metavar="IMG",
                   help="Your arm64 image (Raspberry Pi OS Lite, a Jetson or Debian/Ubuntu image) to install into; "
                        "default: a minimal Debian system.")
    b.add_argument("--extras", help="edgewatch extras to install (comma-separated); default cloud,mqtt and what "
                   "the config's plug-ins need. A list lacking a needed extra is refused.")
    b.add_argument("--compress", choices=["xz", "zstd"],
                   help="Write IMG.xz or IMG.zst (Raspberry Pi Imager reads both) instead of the raw image.")
    b.add_argument("--serial-autologin", action="store_true",
                   help="Root shell on the serial console without a password: emulation tests only.")
    b.add_argument("--keep-root", type=Path, metavar="DIR", help="Also keep the image's root folder here.")
    b.add_argument("--ab", action="store_true", help="A/B image for system updates: boot partition, root slots A "
                   "and B, a data partition; RAUC and U-Boot's boot script (docs/fleet.md, System updates).")
    b.add_argument("--keyring", type=Path, metavar="CA.pem", help="With --ab: the CA certificate bundles must be "
                   "signed under; it becomes /etc/rauc/keyring.pem.")
    u = isub.add_parser(
        "bundle", help="Write a signed RAUC update bundle (.raucb) from an image built with --ab.",
        description="Cut the root slot out of an A/B image and sign it with 'rauc bundle' (verity format).")
    u.add_argument("--image", required=True, type=Path, help="The .img written by 'edgewatch image build --ab'.")
    u.add_argument("--key", required=True, type=Path, help="The signing key (PEM).")
    u.add_argument("--cert", required=True, type=Path,
                   help="The signing certificate (PEM), issued under the keyring's CA.")
    u.add_argument("--version", required=True, help="The version the bundle carries (rauc info, rauc status).")
    u.add_argument("--out", required=True, type=Path, help="Bundle file to write (.raucb).")
    w = isub.add_parser(
        "wheelhouse",
        help="Download edgewatch and its dependencies as aarch64 wheels for an offline board.",
        description="Write a folder to install from with 'pip install --no-index --find-links DIR edgewatch'.",
    )
    w.add_argument("--out", required=True, type=Path, help="New folder for the wheels.")
    w.add_argument("--python", default="3.11", help="The board's Python, MAJOR.MINOR (bookworm 3.11, JetPack 6 3.10).")
    w.add_argument("--numpy", metavar="VERSION",
                   help="The board's apt numpy (Raspberry Pi OS: python3-numpy); picamera2 needs exactly it.")
    w.add_argument("--extras", default="cloud,mqtt", help="edgewatch extras to include (comma-separated).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgewatch", description="Watch machines with a camera and sensors on a Raspberry Pi or Jetson."
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    export_args.add_export(sub)
    _add_enroll(sub)
    _add_capture(sub)
    _add_check(sub)
    _add_vibration(sub)
    _add_service(sub)
    alerts_cli.add_parser(sub, _Parser)
    fleet_cli.add_parser(sub, _Parser)
    _add_demo_bench(sub)
    _add_image(sub)

    p = sub.add_parser("bundle", help="Inspect, verify or sign a model bundle; make a signing key.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="COMMAND", required=True, parser_class=_Parser)
    bsub.add_parser("inspect", help="Print a human summary of a bundle.").add_argument("bundle", type=Path)
    p = bsub.add_parser("verify", help="Recompute every hash (and check the signature); exit 1 naming what is wrong.")
    p.add_argument("bundle", type=Path)
    p.add_argument("--trusted-key", type=Path, action="append", default=[], metavar="PUB",
                   help="A public key the signature must come from (repeat for several); as 'model.trusted_keys'.")
    p = bsub.add_parser("keygen", help="Make an Ed25519 signing key KEY and its public key KEY.pub.")
    p.add_argument("key", type=Path, help="Private key file to create (kept on the workstation, mode 0600).")
    p = bsub.add_parser("sign", help="Sign a bundle's manifest (which holds every file's hash): writes manifest.sig.")
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", required=True, type=Path, help="Private key file from 'edgewatch bundle keygen'.")

    _add_labels(sub)

    p = sub.add_parser("config", help="Validate a config file.")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True, parser_class=_Parser)
    csub.add_parser("check", help="Print the resolved config, or every error with its key path.").add_argument(
        "file", type=Path
    )

    sub.add_parser("version", help="Print the edgewatch version.")
    return parser


def _command_name(args: argparse.Namespace) -> str:
    for nested in ("bundle_command", "config_command", "vibration_command", "labels_command", "image_command",
                   "fleet_command"):
        if getattr(args, nested, None):
            return f"{args.command} {getattr(args, nested)}"
    return str(args.command)


def _resolve(name: str) -> Handler:
    target = _HANDLERS[name]
    if not target:
        raise EdgewatchError(f"'edgewatch {name}' is not available yet in this version")
    module_name, function_name = target.split(":")
    module = importlib.import_module(module_name)
    handler: Handler = getattr(module, function_name)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    from edge.logs import setup_logging

    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.log_level)
        code = _resolve(_command_name(args))(args)
        sys.stdout.flush()  # a closed pipe must fail here, not in the interpreter's exit
        return code
    except EdgewatchError as exc:
        print(f"edgewatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Python ignores SIGPIPE, so a reader that stopped early (head) shows up as this error;
        # stop quietly like other tools, and point stdout at /dev/null so the exit flush is quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _SIGPIPE_EXIT
