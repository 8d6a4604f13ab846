"""Read a SAM template as CloudFormation would for given parameters, for the deploy tests.

Parsed with cfn-lint's decoder (it knows the !Ref/!If/!Sub tags); the few intrinsic
functions the templates use are evaluated here, with parameters at their defaults unless
given. AWS::NoValue removes the key, as in CloudFormation.
"""

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

_NO_VALUE = object()
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "111122223333",
    "AWS::StackName": "chainserve-test",
}


class Template:
    def __init__(self, path: Path, **parameters: str) -> None:
        raw, matches = decode_str(path.read_text())
        assert raw is not None and not matches, matches
        self.raw = raw
        defaults = {name: spec.get("Default") for name, spec in self.raw["Parameters"].items()}
        self.parameters = {**defaults, **parameters}
        self.conditions = {
            name: self.evaluate(body) for name, body in self.raw.get("Conditions", {}).items()
        }

    def rules_pass(self) -> bool:
        """Whether CloudFormation's Rules accept these parameters (it refuses to deploy else)."""
        for rule in self.raw.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            if not all(self.evaluate(check["Assert"]) for check in rule["Assertions"]):
                return False
        return True

    def function(self, name: str = "ChainserveFunction") -> dict[str, Any]:
        resource: dict[str, Any] = self.evaluate(self.raw["Resources"][name])
        return resource

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.evaluate(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, arg)] = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                if arg in PSEUDO:
                    return PSEUDO[arg]
                if arg not in self.parameters:  # a resource: stays a reference
                    return node
                value = self.parameters[arg]
                kind = self.raw["Parameters"][arg]["Type"]
                return (
                    value.split(",")
                    if kind == "CommaDelimitedList" and value
                    else ([] if kind == "CommaDelimitedList" else value)
                )
            if key == "Fn::If":
                condition, yes, no = arg
                return self.evaluate(yes if self.conditions[condition] else no)
            if key == "Fn::Equals":
                left, right = (self.evaluate(a) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not self.evaluate(arg[0])
            if key == "Fn::And":
                return all(self.evaluate(a) for a in arg)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.evaluate(arg[1]))
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._name(m.group(1))), arg)
        evaluated = {k: self.evaluate(v) for k, v in node.items()}
        return {k: v for k, v in evaluated.items() if v is not _NO_VALUE}

    def _name(self, name: str) -> Any:
        return PSEUDO.get(name) or self.parameters[name]
