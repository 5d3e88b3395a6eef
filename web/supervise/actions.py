"""What a supervisor does about a late case, from its case page, and how the people who did the work answer:

- `POST /cases/<number>/supervise` (督办): a message, on the case or on one of its current steps (`task`);
  `cases.supervise` records it, tells the step's holder and its unit, and audits it.
- `POST /cards/<id>/explain` (情况说明): the written explanation of a yellow or red card, once per card;
  `cases.explain_card` keeps the card as issued and records the explanation beside it.
- Reassigning a step inside the subtree (转办 with a reason) posts to the inbox's own route,
  `workbench.inbox_reassign` (one engine call, `cases.reassign_task`, back to the `next` page with a
  flash): the case page only offers the form (templates/supervise/_supervise.html).

The forms are partials of the case page (supervise/_supervise.html, supervise/_card_explain.html) and of
the task page (supervise/_task_notice.html shows the step's 督办). Each POST is one engine call, then back
where it came from — the `next` path the form carries (a path of this site), else the case page — with a
flash saying what was done or, for a refusal, why not (web.reasons). A case or card the reader may not
see is the 404 page, never a flash: the same answer as for one that does not exist.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from engine import cases, queries
from engine.errors import NotFound, YicunError

from .. import reasons
from ..auth.next_url import safe_next
from ..context import current_actor, read, write
from ..i18n import is_english
from . import bp

#: the form fields a refusal may be about (engine.forms.clean_text's `field`) → how the flash names them
FIELD_LABELS = {"message": _l("督办内容"), "explanation": _l("情况说明")}
#: refusals that are the 404 page (the thing is not there for this reader), not a flash on the page
NOT_THERE = frozenset({"case.not_found", "card.not_found"})


def _back(fallback: str) -> str:
    """Where a form goes back to: its `next` (the page it was on, a path of this site), else `fallback`."""
    return safe_next(request.form.get("next")) or fallback


def _message(exc: YicunError) -> str:
    text = reasons.message(exc)
    field = exc.details.get("field")
    label = FIELD_LABELS.get(field) if isinstance(field, str) else None
    if label is None:
        return text
    return f"{label}: {text}" if is_english() else f"{label}：{text}"


def _act(act: Callable[[Session], Any], done: str, fallback: str) -> Any:
    """One engine call in one transaction, then back with a flash; a case or card the reader may not see
    is the 404 page."""
    try:
        with write() as s:
            act(s)
    except NotFound as exc:
        if exc.reason in NOT_THERE:
            raise
        flash(_message(exc))
        return redirect(_back(fallback), code=303)
    except YicunError as exc:
        flash(_message(exc))
        return redirect(_back(fallback), code=303)
    flash(done)
    return redirect(_back(fallback), code=303)


@bp.route("/cases/<number>/supervise", methods=["POST"])
def case_supervise(number: str) -> Any:
    actor = current_actor()
    with read() as s:  # a case the reader may not see: 404, before anything is parsed
        queries.visible_case(s, actor, number)
    back = url_for("workbench.case", number=number) + "#supervision"
    # the step a 督办 is about: none (the case as a whole) when the form leaves it empty
    raw = request.form.get("task", "").strip()
    if raw and not (raw.isdigit() and len(raw) <= 18):
        flash(_("请从列表中选择督办的环节。"))
        return redirect(_back(back), code=303)
    message, task_id = request.form.get("message", ""), int(raw) if raw else None
    return _act(lambda s: cases.supervise(s, number, actor, message, task_id=task_id),
                _("已督办：%(case)s。经办人和所在单位已收到通知。", case=number), back)


@bp.route("/cards/<int:card_id>/explain", methods=["POST"])
def card_explain(card_id: int) -> Any:
    actor = current_actor()
    explanation = request.form.get("explanation", "")
    done: dict[str, str] = {}

    def act(s: Session) -> None:
        done["case"] = cases.explain_card(s, card_id, actor, explanation)

    response = _act(act, _("已填写情况说明。"), url_for("workbench.home"))
    if "case" in done and not safe_next(request.form.get("next")):
        return redirect(url_for("workbench.case", number=done["case"]), code=303)
    return response
