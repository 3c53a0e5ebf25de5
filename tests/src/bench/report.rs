//! Figures, their summary over several runs, the printed table, `bench/results.json` and
//! `docs/performance.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Whether smaller or larger is better, and the bound a target sets.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Target {
    /// The figure must be at most this.
    AtMost(f64),
    /// The figure must be at least this.
    AtLeast(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtMost(t) => format!("<= {}", short(t)),
            Target::AtLeast(t) => format!(">= {}", short(t)),
        }
    }
}

/// One figure of one scenario, gathered over several runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// Scenario (`catch-up`, `live load`, ...).
    pub scenario: String,
    /// `casebook` or `automerge-repo`.
    pub system: String,
    /// `sqlite`, `postgres`, `nodefs` or `-`.
    pub storage: String,
    /// What is measured.
    pub name: String,
    /// Unit of the values.
    pub unit: String,
    /// One value per run.
    pub runs: Vec<f64>,
    /// The target from issue 6, if any.
    pub target: Option<Target>,
    /// The machine it was measured on (`bench::machine`), set when the figures are written;
    /// `--merge` keeps figures measured on another machine beside this run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl Figure {
    /// The median of the runs.
    pub fn median(&self) -> f64 {
        median(&self.runs)
    }

    /// Smallest run.
    pub fn min(&self) -> f64 {
        self.runs.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Largest run.
    pub fn max(&self) -> f64 {
        self.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Whether the median meets the target (`None` without one).
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| t.met(self.median()))
    }
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`th percentile of `values` (nearest rank; 0 for none).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of one scenario run, by name, to be gathered across runs.
#[derive(Default)]
pub struct Run {
    values: Vec<(String, String, f64, Option<Target>)>,
}

impl Run {
    /// Records `value` (in `unit`) as figure `name`, with an optional target.
    pub fn add(&mut self, name: &str, unit: &str, value: f64, target: Option<Target>) {
        self.values
            .push((name.to_owned(), unit.to_owned(), value, target));
    }
}

/// Every figure of a bench run, in the order first seen.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The figures.
    pub figures: Vec<Figure>,
    /// Remarks printed under the table (what was scaled down, what could not run).
    pub notes: Vec<String>,
}

impl Report {
    /// Folds one run of `scenario` on `system`/`storage` into the figures.
    pub fn gather(&mut self, scenario: &str, system: &str, storage: &str, run: Run) {
        for (name, unit, value, target) in run.values {
            match self.figures.iter_mut().find(|f| {
                f.scenario == scenario
                    && f.system == system
                    && f.storage == storage
                    && f.name == name
            }) {
                Some(f) => f.runs.push(value),
                None => self.figures.push(Figure {
                    scenario: scenario.into(),
                    system: system.into(),
                    storage: storage.into(),
                    name,
                    unit,
                    runs: vec![value],
                    target,
                    machine: None,
                }),
            }
        }
    }

    /// The figures, each marked as measured on `machine` unless already marked.
    pub fn measured_on(mut self, machine: &str) -> Report {
        for f in self.figures.iter_mut().filter(|f| f.machine.is_none()) {
            f.machine = Some(machine.to_owned());
        }
        self
    }

    /// The machines the figures were measured on, in the order first seen.
    fn machines(&self) -> Vec<&str> {
        let mut machines = Vec::new();
        for m in self.figures.iter().filter_map(|f| f.machine.as_deref()) {
            if !machines.contains(&m) {
                machines.push(m);
            }
        }
        machines
    }

    /// This run's figures over an earlier run's (`results.json`): every (scenario, system,
    /// storage) this run measured replaces the earlier one in place; the rest are kept, as
    /// are the earlier notes about scenarios this run did not measure.
    pub fn merged_over(self, earlier: Report) -> Report {
        let key = |f: &Figure| (f.scenario.clone(), f.system.clone(), f.storage.clone());
        let fresh: std::collections::BTreeSet<_> = self.figures.iter().map(key).collect();
        let mut figures = Vec::new();
        let mut placed = std::collections::BTreeSet::new();
        for f in earlier.figures {
            let k = key(&f);
            if !fresh.contains(&k) {
                figures.push(f);
            } else if placed.insert(k.clone()) {
                figures.extend(self.figures.iter().filter(|n| key(n) == k).cloned());
            }
        }
        figures.extend(
            self.figures
                .iter()
                .filter(|n| !placed.contains(&key(n)))
                .cloned(),
        );
        let mut notes: Vec<String> = earlier
            .notes
            .into_iter()
            .filter(|n| {
                !fresh
                    .iter()
                    .any(|(scenario, _, _)| n.starts_with(scenario.as_str()))
            })
            .collect();
        notes.extend(self.notes);
        let mut remeasured: Vec<_> = fresh.iter().collect();
        remeasured.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
        notes.extend(remeasured.into_iter().map(|(scenario, _, storage)| {
            format!("{scenario} ({storage}): measured in a later run than the figures around it (--merge)")
        }));
        Report { figures, notes }
    }

    /// The table printed at the end and put into `docs/performance.md`. When the figures
    /// come from more than one machine, a last column says which (numbered as
    /// [`Report::machines`]).
    pub fn table(&self) -> String {
        let machines = self.machines();
        let several = machines.len() > 1;
        let mut out = String::from(
            "| scenario | system | storage | figure | median | min | max | runs | target | met |",
        );
        out.push_str(if several { " machine |\n" } else { "\n" });
        out.push_str("|---|---|---|---|---:|---:|---:|---:|---|---|");
        out.push_str(if several { "---:|\n" } else { "\n" });
        for f in &self.figures {
            let machine = match f.machine.as_deref() {
                Some(m) if several => machines
                    .iter()
                    .position(|n| *n == m)
                    .map(|k| format!(" {} |", k + 1))
                    .unwrap_or_default(),
                _ if several => " |".to_owned(),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} {} | {} | {} | {} | {} | {} |{machine}",
                f.scenario,
                f.system,
                f.storage,
                f.name,
                short(f.median()),
                f.unit,
                short(f.min()),
                short(f.max()),
                f.runs.len(),
                f.target.map(Target::describe).unwrap_or_default(),
                match f.met() {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                }
            );
        }
        out
    }

    /// Side-by-side ratios where both systems measured the same figure on the same machine.
    pub fn comparisons(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for ours in self.figures.iter().filter(|f| f.system == "casebook") {
            if let Some(theirs) = self.figures.iter().find(|f| {
                f.system == "automerge-repo"
                    && f.scenario == ours.scenario
                    && f.name == ours.name
                    && f.machine == ours.machine
            }) && ours.median() != 0.0
            {
                out.insert(
                    format!("{} / {} ({})", ours.scenario, ours.name, ours.storage),
                    theirs.median() / ours.median(),
                );
            }
        }
        out
    }

    /// Writes `results.json` and `performance.md` (the method text followed by the figures).
    pub fn write(
        &self,
        json: &Path,
        markdown: &Path,
        method: &str,
        machine: &str,
    ) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Out<'a> {
            machine: &'a str,
            report: &'a Report,
            automerge_repo_over_casebook: BTreeMap<String, f64>,
        }
        if let Some(dir) = json.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            json,
            serde_json::to_string_pretty(&Out {
                machine,
                report: self,
                automerge_repo_over_casebook: self.comparisons(),
            })?,
        )?;
        let mut md = method.trim_end().to_owned();
        md.push_str("\n\n## Figures (written by `cargo xtask bench`)\n\n");
        match self.machines().as_slice() {
            one @ ([] | [_]) => {
                let _ = writeln!(md, "Machine: {}\n", one.first().copied().unwrap_or(machine));
            }
            several => {
                md.push_str(
                    "Machines (the last column; `--merge` kept figures from earlier runs):\n\n",
                );
                for (k, m) in several.iter().enumerate() {
                    let _ = writeln!(md, "{}. {m}", k + 1);
                }
                md.push('\n');
            }
        }
        md.push_str(&self.table());
        let comparisons = self.comparisons();
        if !comparisons.is_empty() {
            md.push_str("\n### Side by side: automerge-repo's figure divided by Casebook's\n\n");
            for (what, ratio) in comparisons {
                let _ = writeln!(md, "- {what}: {ratio:.2}x");
            }
        }
        if !self.notes.is_empty() {
            md.push_str("\n### Notes from this run\n\n");
            for note in &self.notes {
                let _ = writeln!(md, "- {note}");
            }
        }
        std::fs::write(markdown, md)?;
        Ok(())
    }
}

/// A number with sensible precision for a table.
pub fn short(v: f64) -> String {
    if v == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn runs_gather_into_one_figure_with_median_min_and_max() {
        let mut report = Report::default();
        for v in [30.0, 10.0, 20.0] {
            let mut run = Run::default();
            run.add("time", "ms", v, Some(Target::AtMost(25.0)));
            report.gather("catch-up", "casebook", "sqlite", run);
        }
        let f = &report.figures[0];
        assert_eq!((f.median(), f.min(), f.max()), (20.0, 10.0, 30.0));
        assert_eq!(f.met(), Some(true));
        assert!(
            report
                .table()
                .contains("| catch-up | casebook | sqlite | time | 20.0 ms |")
        );
    }

    fn report(figures: &[(&str, &str, f64)]) -> Report {
        let mut r = Report::default();
        for (scenario, storage, value) in figures {
            let mut run = Run::default();
            run.add("figure", "ms", *value, None);
            r.gather(scenario, "casebook", storage, run);
        }
        r
    }

    #[test]
    fn a_rerun_replaces_its_scenarios_in_place_and_keeps_the_rest() {
        let earlier = report(&[
            ("a", "sqlite", 1.0),
            ("b", "postgres", 2.0),
            ("c", "sqlite", 3.0),
        ]);
        let mut earlier = earlier;
        earlier.notes = vec!["b (postgres): slow".into(), "c (sqlite): fine".into()];
        let now = report(&[("b", "postgres", 20.0), ("d", "sqlite", 4.0)]);
        let merged = now.merged_over(earlier);
        let values: Vec<(&str, f64)> = merged
            .figures
            .iter()
            .map(|f| (f.scenario.as_str(), f.median()))
            .collect();
        assert_eq!(values, [("a", 1.0), ("b", 20.0), ("c", 3.0), ("d", 4.0)]);
        assert_eq!(
            merged.notes,
            [
                "c (sqlite): fine",
                "b (postgres): measured in a later run than the figures around it (--merge)",
                "d (sqlite): measured in a later run than the figures around it (--merge)",
            ]
        );
    }

    #[test]
    fn figures_kept_from_another_machine_say_which_machine_measured_them() {
        let earlier = report(&[("a", "sqlite", 1.0), ("b", "sqlite", 2.0)]).measured_on("old");
        let now = report(&[("b", "sqlite", 20.0)]).measured_on("new");
        let merged = now.merged_over(earlier);
        let table = merged.table();
        assert!(
            table.contains("| a | casebook | sqlite | figure | 1.0 ms |"),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("| a |") && l.ends_with("| 1 |"))
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("| b |") && l.ends_with("| 2 |"))
        );
        let dir = std::env::temp_dir().join(format!("casebook-report-{}", std::process::id()));
        let (json, md) = (dir.join("results.json"), dir.join("performance.md"));
        merged
            .write(&json, &md, "# Method", "new")
            .expect("written");
        let page = std::fs::read_to_string(&md).expect("the page");
        assert!(page.contains("1. old\n2. new\n"), "{page}");
        let again: Report = serde_json::from_value(
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&json).unwrap())
                .unwrap()["report"]
                .clone(),
        )
        .expect("read back");
        assert_eq!(again.machines(), ["old", "new"]);

        // Side by side only where both systems ran on the same machine.
        let mut theirs = Report::default();
        let mut run = Run::default();
        run.add("figure", "ms", 4.0, None);
        theirs.gather("a", "automerge-repo", "nodefs", run);
        let mut run = Run::default();
        run.add("figure", "ms", 40.0, None);
        theirs.gather("b", "automerge-repo", "nodefs", run);
        let both = theirs.measured_on("new").merged_over(merged.clone());
        let ratios = both.comparisons();
        assert_eq!(ratios.len(), 1, "{ratios:?}");
        assert_eq!(ratios.get("b / figure (sqlite)"), Some(&2.0));

        // Figures from one machine: one line, no column, as before.
        let one = report(&[("a", "sqlite", 1.0)]).measured_on("new");
        one.write(&json, &md, "# Method", "new").expect("written");
        let page = std::fs::read_to_string(&md).expect("the page");
        assert!(page.contains("Machine: new\n"), "{page}");
        assert!(page.contains("| target | met |\n"), "{page}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
