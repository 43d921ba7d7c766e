"""Builds the demo's multiple-choice questions from the fact tables (deterministic)."""

import random

from . import content

Q = dict


def _choices(rng: random.Random, correct: str, pool: list[str]) -> tuple[list[str], int]:
    distractors = rng.sample([p for p in pool if p != correct], 3)
    choices = [correct, *distractors]
    rng.shuffle(choices)
    return choices, choices.index(correct) + 1


def _range(low: float, high: float) -> str:
    return f"{low:g}~{high:g}%"


def _risk(low: float, high: float) -> str:
    return f"{(high - low) / low:.2f}"


def combustion(rng: random.Random) -> list[Q]:
    limits = content.EXPLOSION_LIMITS
    ranges = [_range(*v) for v in limits.values()]
    risks = [_risk(*v) for v in limits.values()]
    out = []
    for gas, (low, high) in limits.items():
        choices, correct = _choices(rng, _range(low, high), ranges)
        out.append(Q(subject="연소공학", question_text=f"{gas}의 공기 중 폭발범위로 옳은 것은?",
                     choices=choices, correct_choice=correct))
    for gas, (low, high) in limits.items():
        choices, correct = _choices(rng, _risk(low, high), risks)
        out.append(Q(subject="연소공학", question_text=f"{gas}의 위험도 H = (U - L) / L 는 약 얼마인가?",
                     choices=choices, correct_choice=correct,
                     explanation=f"폭발범위 {_range(low, high)} 이므로 ({high:g} - {low:g}) / {low:g}."))
    return out


def safety(rng: random.Random) -> list[Q]:
    colours = content.CYLINDER_COLOURS
    pool = sorted(set(colours.values()))
    out = []
    for gas, colour in colours.items():
        choices, correct = _choices(rng, colour, pool)
        out.append(Q(subject="가스안전관리", question_text=f"공업용 {gas} 용기의 도색으로 옳은 것은?",
                     choices=choices, correct_choice=correct))
    for text, choices, correct in content.SAFETY_QUESTIONS:
        out.append(Q(subject="가스안전관리", question_text=text, choices=list(choices), correct_choice=correct))
    return out


def general(rng: random.Random) -> list[Q]:
    out = []
    bps = {gas: f"{bp:g}℃" for gas, bp in content.BOILING_POINTS.items()}
    for gas, bp in bps.items():
        choices, correct = _choices(rng, bp, list(bps.values()))
        out.append(Q(subject="가스일반", question_text=f"표준 대기압에서 {gas}의 끓는점은?",
                     choices=choices, correct_choice=correct))
    masses = {gas: str(m) for gas, m in content.MOLAR_MASSES.items()}
    for gas, mass in masses.items():
        choices, correct = _choices(rng, mass, list(masses.values()))
        out.append(Q(subject="가스일반", question_text=f"{gas}의 분자량은 약 얼마인가?",
                     choices=choices, correct_choice=correct))
    lighter = [g for g, m in content.MOLAR_MASSES.items() if m < content.AIR_MOLAR_MASS]
    heavier = [g for g, m in content.MOLAR_MASSES.items() if m > content.AIR_MOLAR_MASS]
    for i in range(8):
        if i % 2 == 0:
            answer, others, word = lighter[i // 2 % len(lighter)], heavier, "가벼운"
        else:
            answer, others, word = heavier[i // 2 % len(heavier)], lighter, "무거운"
        choices = [answer, *rng.sample(others, 3)]
        rng.shuffle(choices)
        out.append(Q(subject="가스일반", question_text=f"다음 중 공기보다 {word} 가스는? ({i + 1})",
                     choices=choices, correct_choice=choices.index(answer) + 1))
    return out


def demo_questions(seed: int = 7) -> list[Q]:
    rng = random.Random(seed)
    return combustion(rng) + safety(rng) + general(rng)
