"""The accommodations of the JSON API (instructors only): a quiz's list, one student's, one group's."""

from __future__ import annotations

from flask import current_app, jsonify

from ..models import Role
from ..services import accommodations
from . import reading, writing
from .api import authenticated, body, bp, me


def _timezone() -> str:
    return current_app.config["TIMEZONE"]


def _student(quiz_id: str, username: str):
    with reading() as s:
        return jsonify(accommodations.student_entry(s, quiz_id, username).as_json())


def _group(quiz_id: str, group: str):
    with reading() as s:
        return jsonify(accommodations.group_entry(s, quiz_id, group).as_json())


@bp.get("/quizzes/<quiz_id>/accommodations")
@authenticated(Role.INSTRUCTOR)
def accommodation_list(quiz_id: str):
    with reading() as s:
        return jsonify([e.as_json() for e in accommodations.entries(s, quiz_id)])


@bp.get("/quizzes/<quiz_id>/accommodations/<username>")
@authenticated(Role.INSTRUCTOR)
def student_accommodation(quiz_id: str, username: str):
    return _student(quiz_id, username)


@bp.put("/quizzes/<quiz_id>/accommodations/<username>")
@authenticated(Role.INSTRUCTOR)
def set_student_accommodation(quiz_id: str, username: str):
    settings, group = accommodations.parse_body(body(), _timezone(), allow_group=True)
    with writing() as s:
        accommodations.set_student(s, quiz_id, username, settings, me(), "api", group)
    return _student(quiz_id, username)


@bp.delete("/quizzes/<quiz_id>/accommodations/<username>")
@authenticated(Role.INSTRUCTOR)
def delete_student_accommodation(quiz_id: str, username: str):
    with writing() as s:
        accommodations.set_student(s, quiz_id, username, accommodations.Settings(), me(), "api")
    return _student(quiz_id, username)


@bp.get("/quizzes/<quiz_id>/accommodation-groups/<group>")
@authenticated(Role.INSTRUCTOR)
def group_accommodation(quiz_id: str, group: str):
    return _group(quiz_id, group)


@bp.put("/quizzes/<quiz_id>/accommodation-groups/<group>")
@authenticated(Role.INSTRUCTOR)
def set_group_accommodation(quiz_id: str, group: str):
    settings, _ = accommodations.parse_body(body(), _timezone(), allow_group=False)
    with writing() as s:
        accommodations.set_group(s, quiz_id, group, settings, me(), "api")
    return _group(quiz_id, group)


@bp.delete("/quizzes/<quiz_id>/accommodation-groups/<group>")
@authenticated(Role.INSTRUCTOR)
def delete_group_accommodation(quiz_id: str, group: str):
    with writing() as s:
        accommodations.set_group(s, quiz_id, group, accommodations.Settings(), me(), "api")
    return _group(quiz_id, group)
