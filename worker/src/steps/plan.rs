//! A flow as a plan: steps with the steps they need. The runner starts every step whose needs are
//! settled, so independent steps run at the same time; a resumed run starts from what the control plane
//! recorded. The list order is a valid order to run them one by one (every need comes earlier), and its
//! reverse is the order to undo them.

use super::{Step, StepName, step};

/// One step of a plan and the steps whose results it reads.
pub struct PlannedStep {
    pub step: Box<dyn Step>,
    pub needs: Vec<StepName>,
}

impl PlannedStep {
    pub fn new(name: StepName, needs: &[StepName]) -> Self {
        Self { step: step(name), needs: needs.to_vec() }
    }

    pub fn name(&self) -> StepName {
        self.step.name()
    }
}

impl std::fmt::Debug for PlannedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (needs {:?})", self.name(), self.needs)
    }
}

#[derive(Debug)]
pub struct Plan {
    steps: Vec<PlannedStep>,
}

impl Plan {
    /// A plan whose steps are listed after everything they need, each once. A plan is code, not input:
    /// one that breaks this is a bug, caught by the first test that builds it.
    pub fn new(steps: Vec<PlannedStep>) -> Self {
        for (i, s) in steps.iter().enumerate() {
            assert!(!steps[..i].iter().any(|e| e.name() == s.name()), "{} is planned twice", s.name());
            for need in &s.needs {
                assert!(
                    steps[..i].iter().any(|e| e.name() == *need),
                    "{} needs {need}, which is not planned before it",
                    s.name()
                );
            }
        }
        Self { steps }
    }

    /// The steps in an order that respects their needs.
    pub fn steps(&self) -> &[PlannedStep] {
        &self.steps
    }

    pub fn names(&self) -> impl Iterator<Item = StepName> + '_ {
        self.steps.iter().map(PlannedStep::name)
    }

    /// Every step `name` needs, directly or through another: all of them settle before it starts.
    pub fn requires(&self, name: StepName) -> Vec<StepName> {
        let mut found: Vec<StepName> = Vec::new();
        let mut todo = vec![name];
        while let Some(next) = todo.pop() {
            for need in self.steps.iter().filter(|s| s.name() == next).flat_map(|s| &s.needs) {
                if !found.contains(need) {
                    found.push(*need);
                    todo.push(*need);
                }
            }
        }
        self.names().filter(|n| found.contains(n)).collect()
    }

    /// The same steps one after another, each needing every step before it: what the plan saves is
    /// measured against this (`bench-steps`).
    pub fn one_by_one(&self) -> Plan {
        let names: Vec<StepName> = self.names().collect();
        Plan::new(names.iter().enumerate().map(|(i, n)| PlannedStep::new(*n, &names[..i])).collect())
    }

    /// The steps not in `settled` whose needs all are, in plan order.
    pub fn ready(&self, settled: &[StepName]) -> Vec<&PlannedStep> {
        self.steps
            .iter()
            .filter(|s| !settled.contains(&s.name()) && s.needs.iter().all(|n| settled.contains(n)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::provisioning;
    use StepName::*;

    #[test]
    fn provisioning_runs_the_independent_steps_together() {
        let plan = provisioning();
        let names = |settled: &[StepName]| plan.ready(settled).into_iter().map(PlannedStep::name).collect::<Vec<_>>();
        let first = names(&[]);
        assert_eq!(first, [PlaceDatabase, ConfigureDns, DeployStack]);
        assert_eq!(names(&[PlaceDatabase]), [CreateDatabase, ConfigureDns, DeployStack]);
        let next = names(&[PlaceDatabase, CreateDatabase, ConfigureDns]);
        assert_eq!(next, [ApplySchema, DeployStack]);
        let all = [PlaceDatabase, CreateDatabase, ApplySchema, ConfigureDns, DeployStack];
        assert_eq!(names(&all), [HealthCheck]);
        assert_eq!(plan.names().count(), 8, "every provisioning step is planned");
        let before_health = [PlaceDatabase, CreateDatabase, ApplySchema, ConfigureDns, DeployStack];
        assert_eq!(plan.requires(HealthCheck), before_health);
        assert!(plan.requires(DeployStack).is_empty());
        let chained = plan.one_by_one();
        assert_eq!(chained.ready(&[]).into_iter().map(PlannedStep::name).collect::<Vec<_>>(), [PlaceDatabase]);
        assert_eq!(chained.requires(Activate).len(), 6);
    }

    #[test]
    fn a_move_reserves_before_it_suspends_and_drops_the_old_copy_last() {
        let plan = crate::steps::plan_move();
        let names = |settled: &[StepName]| plan.ready(settled).into_iter().map(PlannedStep::name).collect::<Vec<_>>();
        assert_eq!(names(&[]), [ReserveServer], "nothing changes before a server is had");
        assert_eq!(names(&[ReserveServer]), [UpgradeSchema]);
        assert_eq!(names(&[ReserveServer, UpgradeSchema]), [ParkDns, CopyDatabase]);
        let copied = [ReserveServer, UpgradeSchema, ParkDns, CopyDatabase];
        assert_eq!(names(&copied), [SwitchServer]);
        let switched = [ReserveServer, UpgradeSchema, ParkDns, CopyDatabase, SwitchServer];
        assert_eq!(names(&switched), [RecordPlan, UnlockLogin, RestoreDns]);
        assert_eq!(plan.names().last(), Some(DropOldCopy));
        assert!(plan.requires(DropOldCopy).contains(&UnlockLogin), "the tenant serves again before the old copy goes");
    }

    #[test]
    #[should_panic(expected = "needs create_database")]
    fn a_step_listed_before_its_need_is_refused() {
        Plan::new(vec![PlannedStep::new(ApplySchema, &[CreateDatabase]), PlannedStep::new(CreateDatabase, &[])]);
    }
}
