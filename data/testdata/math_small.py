# Makes math_small.jsonl, the expected conversion of the problems that
# math_test.go (mathSmall) puts in a small MATH-format tar: Python's
# json.dumps(..., ensure_ascii=False), the answer by the brace-matching rule
# of ../shared/data/README.md, lines sorted by unique_id. Run: python3 math_small.py
import json

probs = {
    "test/algebra/1.json": {"problem": "Caf\u00e9 \u2014 is $\\pi \\le 2$?\u2028Say \"yes\".", "level": "Level 1", "type": "Algebra", "solution": "No, so $\\boxed{\\frac{1}{2}}$."},
    "test/algebra/10.json": {"problem": "Tab\there", "level": "Level 2", "type": "Algebra", "solution": "Boxed the old way: \\fbox{5}"},
    "test/algebra/2.json": {"problem": "Ctrl \u0001 and \\ backslash\r\n", "level": "Level 3", "type": "Algebra", "solution": "First $\\boxed{1}$, then $\\boxed{x^{2}+\\{y\\}}$ \U0001F600."},
    "test/geometry/3.json": {"problem": "Empty box", "level": "Level ?", "type": "Geometry", "solution": "Nothing: $\\boxed{}$"},
}


def last_boxed(s):
    i = s.rfind("\\boxed")
    if i < 0:
        i = s.rfind("\\fbox")
        if i < 0:
            return ""
    o = s.find("{", i)
    d = 0
    for j in range(o, len(s)):
        if s[j] == "{":
            d += 1
        elif s[j] == "}":
            d -= 1
            if d == 0:
                return s[o + 1:j]
    return ""


with open("math_small.jsonl", "w", encoding="utf-8", newline="") as f:
    for k in sorted(probs):
        p = dict(probs[k])
        p["answer"] = last_boxed(p["solution"])
        p["unique_id"] = k
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
