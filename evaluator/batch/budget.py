"""--max-cost: start a judgment only if its worst case fits beside what is spent and what the
judgments in flight could still cost (their worst cases are reserved until they end).

One that does not fit waits for those in flight to finish, since most cost far less than their worst
case; if it still does not fit with nothing in flight, the budget is exhausted and no more judgments
start. So the budget is never exceeded, and how much gets judged does not depend on --concurrency.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any


class Budget:
    """Spent plus worst-case reservations of judgments in flight, so concurrent workers never overshoot --max-cost."""

    def __init__(self, limit_usd: float) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.reservations = 0  # judgments in flight holding a worst-case reservation
        self.exhausted = False
        self.first_refused: float | None = None  # the worst case that exhausted the budget
        self.largest_refused = 0.0  # the largest worst case of any judgment refused (see message)
        self._changed = asyncio.Condition()

    async def reserve(self, worst_usd: float) -> bool:
        """Wait until `worst_usd` fits, and reserve it; False once the budget is exhausted."""
        async with self._changed:
            while not self.exhausted and self.spent + self.reserved + worst_usd > self.limit:
                if not self.reservations:  # nothing in flight will free any budget
                    self.exhausted = True
                    self.first_refused = worst_usd
                    break
                await self._changed.wait()
            if self.exhausted:
                self.largest_refused = max(self.largest_refused, worst_usd)
                return False
            self.reserved += worst_usd
            self.reservations += 1
            return True

    def spend(self, usd: float | None) -> None:
        """Count a finished judgment's cost (before its reservation is released: the budget never
        looks freer than it is)."""
        self.spent += usd or 0.0

    async def release(self, worst_usd: float) -> None:
        async with self._changed:
            self.reserved = max(self.reserved - worst_usd, 0.0) if self.reservations > 1 else 0.0
            self.reservations -= 1
            self._changed.notify_all()

    def refusal(self, worst_usd: float) -> str:
        """Why a judgment was not started (recorded with the item)."""
        return (f"not started: spent ${self.spent:.4f} + worst case ${worst_usd:.4f} "
                f"would exceed --max-cost ${self.limit:.4f}")

    def message(self, left: int) -> str:
        """What the user reads when the budget ran out: when not even one judgment fits, running
        again cannot help, so say what the budget would need to be."""
        first = self.first_refused
        if self.spent == 0 and first is not None and first > self.limit:
            # Every transcript left was refused, and any of them may be the first a re-run tries (the
            # order workers reach the budget is not fixed): the largest worst case, rounded up, is the
            # figure that does start one whichever comes first.
            need = math.ceil(self.largest_refused * 10000) / 10000
            return (f"--max-cost ${self.limit:.4f} is below the worst case of a single judgment "
                    f"(${first:.4f}: every repair made, every reply --max-tokens long), so nothing was judged "
                    f"and {RERUN_CANNOT_HELP}: {left} transcript(s) left unjudged; give --max-cost "
                    f"{need:.4f} or more to start (a dry run gives the worst case of the whole cohort), or "
                    "lower --max-tokens or --repair-attempts")
        return (f"--max-cost reached: {left} transcript(s) left unjudged (${self.spent:.4f} spent; each run has "
                "its own budget, and a re-run pays only for what is left)")


RERUN_CANNOT_HELP = "running again cannot help"  # the summary then does not advise running again


def check_price(options: Any) -> None:
    """--max-cost with a model needs its price (from litellm's map or --price-in/--price-out)."""
    from evaluator.batch.estimate import price_known
    from evaluator.errors import BadInput

    if not price_known(options):
        raise BadInput(f"--max-cost needs the model's price, and litellm has none for {options.model}: "
                       "give --price-in and --price-out (USD per million tokens)")
