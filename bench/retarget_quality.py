"""Retargeting quality: every shipped clip onto the humanoid itself, Atlas, H1 and G1, with the quality report.

Per robot and clip: mean and max keypoint error after scaling (mm), joint-limit
violations (target 0), foot skating (mm per planted frame), ground penetration (mm,
issue limit 5) and self-collision frames, as ``mimic retarget`` reports them.  Peer:
the humanoid onto itself (the source skeleton; its errors come only from the contact
and ground corrections and the IK).

Usage:  python bench/retarget_quality.py [--robots humanoid,atlas,h1,g1] [--no-record]
Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json

from benchlib import record_section

FIELDS = ("keypoint_error_mean_mm", "keypoint_error_max_mm", "joint_limit_violations",
          "foot_skating_mm_per_contact_frame", "ground_penetration_max_mm", "self_collision_frames", "frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robots", default="humanoid,atlas,h1,g1")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from mimic_retarget.human import keypoints_from_clip
    from mimic_retarget.retarget import Retargeter
    from mimic_sim.character import load_character
    from mimic_sim.deepmimic_format import shipped_clips

    sources = {clip: keypoints_from_clip(clip) for clip in shipped_clips()}
    reports: dict[str, dict[str, dict]] = {}
    for robot in args.robots.split(","):
        retargeter = Retargeter(load_character(robot))
        reports[robot] = {clip: retargeter.retarget(human, clip).report for clip, human in sources.items()}
        for clip, report in reports[robot].items():
            print(f"{robot:8s} {clip:15s} " + " ".join(f"{k}={report[k]:.1f}" if isinstance(report[k], float)
                                                       else f"{k}={report[k]}" for k in FIELDS), flush=True)
    summary = {}
    for robot, by_clip in reports.items():
        frames = sum(r["frames"] for r in by_clip.values())
        summary[robot] = {
            "mean_error_mm": sum(r["keypoint_error_mean_mm"] * r["frames"] for r in by_clip.values()) / frames,
            "max_error_mm": max(r["keypoint_error_max_mm"] for r in by_clip.values()),
            "limit_violations": sum(r["joint_limit_violations"] for r in by_clip.values()),
            "max_penetration_mm": max(r["ground_penetration_max_mm"] for r in by_clip.values()),
            "skating_mm_per_contact_frame": sum(r["foot_skating_mm_per_contact_frame"] for r in by_clip.values())
            / len(by_clip),
            "self_collision_frames": sum(r["self_collision_frames"] for r in by_clip.values()),
            "frames": frames,
        }
    if not args.no_record:
        clips = list(sources)
        record_section("retarget_quality", "python bench/retarget_quality.py", [
            f"All {len(clips)} shipped clips at their own frame rates; `mimic retarget`'s report per clip.", "",
            "| robot | mean keypoint error | worst clip max | limit violations | max penetration | skating "
            "(mean over clips) | self-collision frames |", "|---|---|---|---|---|---|---|",
            *(f"| {r} | {s['mean_error_mm']:.1f} mm | {s['max_error_mm']:.0f} mm | {s['limit_violations']} | "
              f"{s['max_penetration_mm']:.2f} mm | {s['skating_mm_per_contact_frame']:.2f} mm/frame | "
              f"{s['self_collision_frames']} of {s['frames']} |" for r, s in summary.items()),
            "", "Mean keypoint error (mm) per clip:", "",
            "| clip | " + " | ".join(reports) + " |", "|---|" + "---|" * len(reports),
            *(f"| {c} | " + " | ".join(f"{reports[r][c]['keypoint_error_mean_mm']:.1f}" for r in reports) + " |"
              for c in clips),
        ])
    print(json.dumps({"benchmark": "retarget_quality", **{f"{r}_{k}": v for r, s in summary.items()
                                                           for k, v in s.items()}}))


if __name__ == "__main__":
    main()
