"""Every failure ends the same way: one ``error: …`` line on stderr that says what to do, and the exit
code that classifies it. AWS errors get a hint per error code; ``runtime.ops`` exceptions map by kind."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from runtime import aws
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_USAGE
from runtime.ops.errors import NothingToDo, OpsError, OpsUsageError

P = ParamSpec("P")
R = TypeVar("R")

_AWS_HINTS = {
    "AccessDenied": "the caller lacks a permission: run with the ops role",
    "AccessDeniedException": "the caller lacks a permission: run with the ops role",
    "NoSuchBucket": "check TTP_BUCKET_NAME",
    "AWS.SimpleQueueService.NonExistentQueue": "check the queue URLs in TTP_CUSTOMER_QUEUES",
    "QueueDoesNotExist": "check the queue URLs in TTP_CUSTOMER_QUEUES",
    "ExpiredToken": "refresh your AWS credentials",
}


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def exit_code_of(exc: OpsError) -> int:
    if isinstance(exc, OpsUsageError):
        return EXIT_USAGE
    if isinstance(exc, NothingToDo):
        return EXIT_ATTENTION
    return EXIT_FAILED


def aws_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn AWS and ops errors into a one-line message with what to do, and a meaningful exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            fail(str(exc), exit_code_of(exc))
        except NoCredentialsError:
            fail("no AWS credentials: set AWS_PROFILE (or the AWS_ACCESS_KEY_ID/... variables) and AWS_REGION")
        except ClientError as exc:
            hint = _AWS_HINTS.get(aws.error_code(exc), "check the AWS region and the resource names")
            fail(f"AWS call failed: {exc} — {hint}")
        except BotoCoreError as exc:
            fail(f"AWS call failed: {exc} — check the network, AWS_REGION and AWS_ENDPOINT_URL")

    return wrapper
