//! "No cloud write", as a cloud's peer saw it: the same two scenarios on every cloud, checked
//! on the peer's request log ([`Faults::logging`]), not on idplan's own output.

use super::{Faults, Output, TestDir};

/// One cloud's side of the scenarios.
pub struct NoCloudWrite<'a> {
    /// The request log of the cloud's peer.
    pub log: &'a Faults,
    /// Where idplan runs; its `idplan.yaml` wants two control planes.
    pub dir: &'a TestDir,
    /// Runs idplan in `dir` against the peer.
    pub idplan: &'a dyn Fn(&[&str]) -> Output,
    /// The spec with control planes `0..n`.
    pub spec: &'a dyn Fn(usize) -> String,
    /// A write the first apply must show, so that the log is shown to see idplan's writes.
    pub is_write: &'a dyn Fn(&str) -> bool,
}

impl NoCloudWrite<'_> {
    #[track_caller]
    fn wrote(&self, from: usize) {
        assert!(
            self.log
                .writes_since(from)
                .iter()
                .any(|r| (self.is_write)(r)),
            "the log sees idplan's writes: {:?}",
            self.log.requests()
        );
    }

    /// A second apply, and an apply that rebuilds a lost state, send reads only.
    #[track_caller]
    pub fn second_apply_and_rebuilt_state(&self) {
        (self.idplan)(&["apply", "--auto-approve"]).assert_code(0);
        self.wrote(0);
        for rebuild in [false, true] {
            if rebuild {
                std::fs::remove_dir_all(self.dir.path().join("state")).unwrap();
            }
            let mark = self.log.requests().len();
            (self.idplan)(&["apply", "--auto-approve"]).assert_code(0);
            assert!(self.log.requests().len() > mark, "the apply read the cloud");
            assert_eq!(self.log.writes_since(mark), Vec::<String>::new());
        }
    }

    /// A stale saved plan refused, and an apply refused because another holds the state's
    /// lock, send no write; the same apply unlocked does.
    #[track_caller]
    pub fn refused_stale_plan_and_concurrent_apply(&self) {
        (self.idplan)(&["plan", "--out", "old.json"]).assert_code(0);
        (self.idplan)(&["plan", "--out", "new.json"]).assert_code(0);
        (self.idplan)(&["apply", "plans/new.json"]).assert_code(0);
        self.wrote(0);

        let mark = self.log.requests().len();
        let stale = (self.idplan)(&["apply", "plans/old.json"]);
        stale.assert_code(1);
        stale.assert_stderr_contains("saved plan plans/old.json is stale");
        assert_eq!(self.log.writes_since(mark), Vec::<String>::new());

        // Hold the lock the way a running idplan does; the spec wants more.
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.path().join("state/idplan.state.json.lock"))
            .unwrap();
        lock.try_lock().unwrap();
        self.dir.write("idplan.yaml", &(self.spec)(3));
        let mark = self.log.requests().len();
        let refused = (self.idplan)(&["apply", "--auto-approve"]);
        refused.assert_code(1);
        refused.assert_stderr_contains("is locked by another idplan");
        assert_eq!(self.log.writes_since(mark), Vec::<String>::new());
        drop(lock);

        let mark = self.log.requests().len();
        (self.idplan)(&["apply", "--auto-approve"]).assert_code(0);
        assert!(
            !self.log.writes_since(mark).is_empty(),
            "{:?}",
            self.log.requests()
        );
    }
}
