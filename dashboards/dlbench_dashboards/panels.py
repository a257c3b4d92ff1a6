"""Panel builders shared by the three dashboards: every panel queries the `$datasource` variable.

A `Layout` places panels left to right on Grafana's 24-column grid and numbers them, so ids are unique and the
dashboards read top to bottom the way they are written in code.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, gauge, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DynamicConfigValue,
    DataTransformerConfig,
    GridPos,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
GRID_WIDTH = 24


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(
    name: str, label: str, query: str, *, multi: bool = True, all_matches_anything: bool = True
) -> dashboard.QueryVariable:
    """A Prometheus label_values() variable; multi-value ones match with =~. `All` is `.*` (cheaper than a regex of
    every value) unless `all_matches_anything` is False: then Grafana sends exactly the values offered, which keeps
    jobs out that the variable's query left out."""
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.NATURAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    return variable.all_value(".*") if multi and all_matches_anything else variable


def _targets(queries: list[tuple[str, str]], *, instant: bool = False, table_format: bool = False):
    built = []
    for index, (expr, legend) in enumerate(queries):
        target = prometheus.Dataquery().expr(expr).ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        if legend:
            target = target.legend_format(legend)
        if instant:
            target = target.instant()
        else:
            target = target.range()
        if table_format:
            target = target.format("table")
        built.append(target)
    return built


def _thresholds(steps: list[tuple[float | None, str]]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _value_map(states: dict[str, tuple[str, str]]) -> ValueMap:
    return ValueMap(
        options={
            value: ValueMappingResult(text=text, color=color, index=i)
            for i, (value, (text, color)) in enumerate(states.items())
        }
    )


def _panel(builder, title: str, description: str):
    """What every panel has: a title, a description and the `$datasource` variable."""
    return builder.title(title).description(description).datasource(DATASOURCE)


def _with_targets(panel, queries: list[tuple[str, str]], **target_options):
    for target in _targets(queries, **target_options):
        panel = panel.with_target(target)
    return panel


def _last_value(panel, thresholds: list[tuple[float | None, str]]):
    """Single-value panels (stat, gauge) show each series' latest value, coloured by `thresholds`."""
    return panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)).thresholds(
        _thresholds(thresholds)
    )


def time_series(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str,
    description: str,
    min_value: float | None = None,
    max_value: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    stacked: bool = False,
    no_value: str | None = None,
) -> timeseries.Panel:
    panel = (
        _panel(timeseries.Panel(), title, description)
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
        )
    )
    panel = _with_targets(panel, queries)
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if thresholds:
        panel = panel.thresholds(_thresholds(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def stat_panel(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str,
    description: str,
    thresholds: list[tuple[float | None, str]] | None = None,
    text_mode: str = "auto",
    graph: bool = False,
    no_value: str | None = None,
) -> stat.Panel:
    panel = (
        _panel(stat.Panel(), title, description)
        .unit(unit)
        .graph_mode(common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .text_mode(common.BigValueTextMode(text_mode))
    )
    panel = _last_value(panel, thresholds or [(None, "green")])
    if no_value is not None:
        panel = panel.no_value(no_value)
    return _with_targets(panel, queries, instant=not graph)


def gauge_panel(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str,
    description: str,
    max_value: float,
    thresholds: list[tuple[float | None, str]],
) -> gauge.Panel:
    """One dial per series (per GPU), current value against 0..max_value."""
    panel = _panel(gauge.Panel(), title, description).unit(unit).min(0).max(max_value).show_threshold_markers(True)
    return _with_targets(_last_value(panel, thresholds), queries, instant=True)


def state_timeline(
    title: str, queries: list[tuple[str, str]], *, description: str, states: dict[str, tuple[str, str]]
) -> statetimeline.Panel:
    """Discrete 0/1 (or small integer) series as coloured bands: `states` maps a value to (text, colour)."""
    panel = (
        _panel(statetimeline.Panel(), title, description)
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(80)
        .mappings([_value_map(states)])
        .thresholds(_thresholds([(None, "text")]))
    )
    return _with_targets(panel, queries)


def table_panel(
    title: str,
    queries: list[tuple[str, str]],
    *,
    description: str,
    units: dict[str, str] | None = None,
    hide: tuple[str, ...] = ("Time", "__name__", "job", "instance"),
) -> table.Panel:
    """Instant queries as one table: one row per label set, one column per query (`Value #A`, `Value #B`, ...)."""
    panel = (
        _panel(table.Panel(), title, description)
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {name: True for name in hide},
                    "renameByName": {
                        f"Value #{chr(ord('A') + i)}": legend for i, (_, legend) in enumerate(queries) if legend
                    },
                },
            )
        )
    )
    for column, unit in (units or {}).items():
        panel = panel.override_by_name(column, [dashboard_property("unit", unit)])
    return _with_targets(panel, queries, instant=True, table_format=True)


def link(title: str, url: str) -> dashboard.DashboardLink:
    """A data link (series or table cell) or a dashboard link; `url` may use Grafana's ${__field.labels.x} and
    ${__data.fields.x} to carry the clicked series' labels."""
    return dashboard.DashboardLink(title).url(url).type(DashboardLinkType.LINK)


def annotation(name: str, expr: str, color: str) -> dashboard.AnnotationQuery:
    """A Prometheus annotation: a mark wherever `expr` returns a series."""
    return dashboard.AnnotationQuery().name(name).datasource(DATASOURCE).expr(expr).enable(True).icon_color(color)


def dashboard_property(prop_id: str, value: object) -> DynamicConfigValue:
    return DynamicConfigValue(id_val=prop_id, value=value)


class Layout:
    """Places panels on the grid in reading order and gives each a unique id."""

    def __init__(self, board: dashboard.Dashboard) -> None:
        self.board = board
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def _new_line(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0

    def row(self, title: str) -> None:
        self._new_line()
        self.board.with_row(dashboard.Row(title).id(self.next_id).grid_pos(GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y)))
        self.next_id += 1
        self.y += 1

    def add(self, *panels, width: int, height: int) -> None:
        """Places `panels`, all `width` columns by `height` rows, after the last one; a panel that does not fit the
        line starts the next."""
        for panel in panels:
            if self.x + width > GRID_WIDTH:
                self._new_line()
            self.board.with_panel(panel.id(self.next_id).grid_pos(GridPos(h=height, w=width, x=self.x, y=self.y)))
            self.next_id += 1
            self.x += width
            self.row_height = max(self.row_height, height)


def new_dashboard(
    title: str, uid: str, description: str, variables: list, annotations: list | None = None
) -> tuple[dashboard.Dashboard, Layout]:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["dlbench", "gpu"])
        .editable()
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
    )
    for variable in variables:
        board = board.with_variable(variable)
    for query in annotations or []:
        board = board.annotation(query)
    return board, Layout(board)
