"""The report page's interactive section: plotly figures drawn in the browser from
`explore.explorer_payload` (the numbers come from there, tested; this module only writes HTML and
the script that draws them). plotly.js is embedded once, so the page works offline."""

from __future__ import annotations

import html
import json

from raygap.report.explore import explorer_payload
from raygap.report.studies import Study

EXPLORER_JS = """
(() => {
  const data = JSON.parse(document.getElementById('explore-data').textContent);
  const select = document.getElementById('explore-pair');
  const colours = data.colours;
  const levelDash = {'25': 'dot', '50': 'dash', '75': 'longdash'};
  const fmt = v => v === null || v === undefined ? '—' : (typeof v === 'number' ? Number(v.toPrecision(4)).toString() : String(v));
  const label = m => data.labels[m] || m;

  function hoverText(study, c, unstable) {
    const lines = [`<b>${study.name} · trial ${c.trial_id}</b>`];
    for (const [k, v] of Object.entries(c.params)) lines.push(`${k} = ${fmt(v)}`);
    lines.push(`seeds: ${c.seeds}` + (unstable ? ' · front membership differs between seeds' : ''));
    for (const m of study.metrics) lines.push(`${label(m)}: ${fmt(c.values[m])} ± ${fmt(c.stds[m])}`);
    return lines.join('<br>');
  }

  function frontTraces(x, y) {
    const traces = [];
    data.studies.forEach((study, i) => {
      const pair = study.pairs[`${x}|${y}`];
      if (!pair) return;
      const colour = colours[i % colours.length];
      const unstable = new Set(pair.unstable);
      const shown = study.configurations.map((c, j) => [c, pair.on_front[j]]).filter(([c]) => c.values[x] !== null && c.values[y] !== null);
      traces.push({
        type: 'scatter', mode: 'markers', name: `${study.name}: configurations (seed means)`,
        x: shown.map(([c]) => c.values[x]), y: shown.map(([c]) => c.values[y]),
        error_x: {type: 'data', array: shown.map(([c]) => c.stds[x] || 0), visible: true, thickness: 1, color: colour},
        error_y: {type: 'data', array: shown.map(([c]) => c.stds[y] || 0), visible: true, thickness: 1, color: colour},
        text: shown.map(([c]) => hoverText(study, c, unstable.has(c.trial_id))), hoverinfo: 'text',
        customdata: shown.map(([c]) => [i, c.trial_id]),
        marker: {color: colour, size: shown.map(([, f]) => f ? 12 : 7),
                 symbol: shown.map(([c]) => unstable.has(c.trial_id) ? 'diamond-open' : 'circle'), line: {width: 2, color: colour}},
      });
      const front = shown.filter(([, f]) => f).map(([c]) => c).sort((a, b) => a.values[x] - b.values[x]);
      traces.push({type: 'scatter', mode: 'lines', name: `${study.name}: front of means`, x: front.map(c => c.values[x]),
                   y: front.map(c => c.values[y]), line: {color: colour, width: 1.5}, hoverinfo: 'skip'});
      // One legend entry for a study's attainment lines (their dashes say the level): three would crowd it.
      const levels = Object.entries(pair.surfaces).filter(([, surface]) => surface.x.length);
      for (const [k, [level, surface]] of levels.entries()) {
        traces.push({type: 'scatter', mode: 'lines', legendgroup: `${study.name}-attainment`, showlegend: k === 0,
                     name: `${study.name}: ${levels.map(([l]) => l).join(' / ')} % attainment (per-seed fronts)`,
                     x: surface.x, y: surface.y, line: {color: colour, width: 1, dash: levelDash[level], \
shape: data.better[x] === 'min' ? 'hv' : 'vh'},
                     hoverinfo: 'skip', opacity: 0.8});
      }
      const pruned = study.pruned.filter(p => p.values[x] !== null && p.values[x] !== undefined && \
p.values[y] !== null && p.values[y] !== undefined);
      if (pruned.length) traces.push({
        type: 'scatter', mode: 'markers', name: `${study.name}: pruned (where they stopped)`,
        x: pruned.map(p => p.values[x]), y: pruned.map(p => p.values[y]),
        text: pruned.map(p => `<b>${study.name} · trial ${p.trial_id}</b><br>pruned at step ${p.step} (seed ${p.seed})`), hoverinfo: 'text',
        customdata: pruned.map(p => [i, p.trial_id]), marker: {color: '#888', symbol: 'x', size: 8},
      });
    });
    return traces;
  }

  function drawFront() {
    const [x, y] = select.value.split('|');
    Plotly.react('explore-front', frontTraces(x, y), {
      title: {text: `${label(x)} against ${label(y)}: click a point for its training curves`},
      xaxis: {title: {text: label(x)}}, yaxis: {title: {text: label(y)}}, hovermode: 'closest',
      legend: {orientation: 'h', y: -0.2}, margin: {t: 50},
    });
    const failed = data.studies.flatMap(s => s.failed.map(f => `${s.name} trial ${f.trial_id} seed ${f.seed}: ${f.error || 'failed'}`));
    document.getElementById('explore-failed').textContent = failed.length ? `Failed (no metrics, not drawn): ${failed.join('; ')}` : '';
  }

  function drawCurves(studyIndex, trialId) {
    const study = data.studies[studyIndex];
    const seeds = (study.curves || {})[trialId] || {};
    const traces = [];
    for (const [seed, curve] of Object.entries(seeds)) {
      if (curve.modality_gap) traces.push({type: 'scatter', mode: 'lines+markers', name: `gap, seed ${seed}`, \
x: curve.step, y: curve.modality_gap});
      if (curve.mean_r1) traces.push({type: 'scatter', mode: 'lines+markers', name: `mean R@1, seed ${seed}`, \
x: curve.step, y: curve.mean_r1, yaxis: 'y2', line: {dash: 'dot'}});
    }
    Plotly.react('explore-curves', traces, {
      title: {text: traces.length ? `${study.name} · trial ${trialId}: training curves` : `${study.name} · trial ${trialId}: no history`},
      xaxis: {title: {text: 'training step'}}, yaxis: {title: {text: label('modality_gap')}},
      yaxis2: {title: {text: label('mean_r1')}, overlaying: 'y', side: 'right'}, legend: {orientation: 'h', y: -0.25}, margin: {t: 50},
    });
    document.getElementById('explore-curves').dataset.trial = trialId;
  }

  select.addEventListener('change', drawFront);
  drawFront();
  document.getElementById('explore-front').on('plotly_click', event => {
    const [studyIndex, trialId] = event.points[0].customdata;
    drawCurves(studyIndex, trialId);
  });
  // Until a click: the first configuration (front first) that has curves.
  const first = data.studies.findIndex(s => s.configurations.some(c => (s.curves || {})[c.trial_id]));
  if (first >= 0) drawCurves(first, data.studies[first].configurations.find(c => data.studies[first].curves[c.trial_id]).trial_id);
  document.body.dataset.explorer = 'drawn';
})();
"""


def interactive_section(studies: list[Study]) -> str:
    """The page's "Explore" section: a pair picker, the front figure, the curves figure, the data
    and the scripts; empty when no study has two metrics to pair."""
    from plotly.offline import get_plotlyjs

    from raygap.report.style import OKABE_ITO

    payload = explorer_payload(studies)
    if not payload["pairs"]:
        return ""
    payload["colours"] = OKABE_ITO  # the static figures' colour-blind-safe palette
    first = [m for m in studies[0].objectives if m in payload["labels"]][:2]
    payload["pairs"].sort(key=lambda pair: sorted(pair) != sorted(first))  # the study's objectives first
    options = "".join(
        f"<option value='{x}|{y}'>{html.escape(payload['labels'][x])} against {html.escape(payload['labels'][y])}</option>"
        for x, y in payload["pairs"]
    )
    data = json.dumps(payload, allow_nan=False).replace("</", "<\\/")  # never ends the script element early
    return "\n".join(
        [
            "<h2>Explore</h2>",
            "<p>Seed means with their standard deviations; large markers are the front of means, open diamonds "
            "configurations whose front membership differs between seeds; dotted, dashed and long-dashed lines are the "
            "25, 50 and 75 % attainment surfaces of the per-seed fronts (where that fraction of seeds reached); grey × "
            "pruned trials where they stopped. Hover for a configuration, click for its training curves.</p>",
            f"<label>objectives <select id='explore-pair'>{options}</select></label>",
            "<div id='explore-front' class='explore' style='height:560px'></div>",
            "<p id='explore-failed'></p>",
            "<div id='explore-curves' class='explore' style='height:380px'></div>",
            f"<script>{get_plotlyjs()}</script>",
            f"<script id='explore-data' type='application/json'>{data}</script>",
            f"<script>{EXPLORER_JS}</script>",
        ]
    )
