"""Registries for the manifest tests: names Fabric accepts, names it would reject, deduplication options."""

from __future__ import annotations

from fabric_jobs.registry import JobContext, JobRegistry

FORECAST = "Contoso.FinanceAnalytics.Forecast"
REPORT = "Contoso.FinanceAnalytics.Report"
LONG_WORKLOAD = "Contoso-Corporation-Europe.FinanceAnalytics.Item"


async def handler(ctx: JobContext) -> None:
    pass


registry = JobRegistry()
registry.add(FORECAST, f"{FORECAST}.CalculateForecast", handler, deduplication="None")
registry.add(FORECAST, "calculateForecast", handler)
registry.add(FORECAST, f"{FORECAST}.Export-Report2", handler)
registry.add(FORECAST, f"{FORECAST}.with_underscore", handler)
registry.add(FORECAST, "Contoso.FinanceAnalytics.Other.Job", handler)
registry.add(FORECAST, f"{FORECAST}.{'J' * 70}", handler)
registry.add(REPORT, f"{REPORT}.Refresh", handler, scheduled_deduplication="PerUser")
registry.add("Contoso.Forecast", "Contoso.Forecast.Run", handler)
registry.add(LONG_WORKLOAD, f"{LONG_WORKLOAD}.Run", handler)

REJECTED = (
    "calculateForecast",
    f"{FORECAST}.with_underscore",
    "Contoso.FinanceAnalytics.Other.Job",
    f"{FORECAST}.{'J' * 70}",
    "Contoso.Forecast",
    LONG_WORKLOAD,
)

nothing_valid = JobRegistry()
nothing_valid.add(FORECAST, "calculateForecast", handler)
nothing_valid.add("Short.Name", "Short.Name.Job", handler)
