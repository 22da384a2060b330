"""Placeholder router, filled in by the domain work in progress."""

from fastapi import APIRouter

router = APIRouter()
