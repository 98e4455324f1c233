//! Fixed glue between the WIT world (`wit/kernel.wit`) and the candidate's
//! `kernel::Index`. Compiled for WebAssembly only.

use std::sync::Once;

use crate::kernel::Index;
use crate::sdk::{Kernel, Metric, Params};

wit_bindgen::generate!({
    path: "../wit",
    world: "kernel",
});

use exports::anneval::kernel::index::{Guest, GuestSearcher, Metric as WitMetric};

pub(crate) fn log(message: &str) {
    anneval::kernel::host::log(message);
}

/// Routes panic messages to the host log, so a trap carries its reason.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // The hook's text reads "panicked at <file>:<line>:<col>:\n<message>".
        std::panic::set_hook(Box::new(|info| log(&info.to_string())));
    });
}

struct Component;

impl Guest for Component {
    type Searcher = Searcher;

    fn build(
        base: Vec<f32>,
        dim: u32,
        metric: WitMetric,
        params: Vec<(String, String)>,
    ) -> Vec<u8> {
        install_panic_hook();
        let metric = match metric {
            WitMetric::Euclidean => Metric::Euclidean,
            WitMetric::Angular => Metric::Angular,
        };
        let index = Index::build(&base, dim as usize, metric, &Params::new(params));
        drop(base);
        let mut out = Vec::new();
        index.save(&mut out);
        out
    }
}

struct Searcher {
    index: Index,
}

impl GuestSearcher for Searcher {
    fn new(bytes: Vec<u8>) -> Self {
        install_panic_hook();
        Searcher {
            index: Index::load(&bytes),
        }
    }

    fn search_batch(
        &self,
        queries: Vec<f32>,
        dim: u32,
        k: u32,
        ef: u32,
    ) -> Result<Vec<u32>, String> {
        let (dim, k) = (dim as usize, k as usize);
        if dim == 0 || !queries.len().is_multiple_of(dim) {
            return Err(format!(
                "{} query floats do not divide into rows of {dim}",
                queries.len()
            ));
        }
        let mut out = Vec::with_capacity(queries.len() / dim * k);
        self.index
            .search_batch(&queries, dim, k, ef as usize, &mut out)
            .map(|()| out)
    }
}

export!(Component);
