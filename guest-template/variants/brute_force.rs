//! Variant: a brute-force scan. Exact, slow, and simple: the floor any index
//! must beat. The hostile-candidate tests also use it as their base,
//! replacing the `HOOK` comments with misbehaviour.

use crate::sdk::*;

pub struct Index {
    dim: usize,
    metric: Metric,
    data: Vec<f32>,
}

impl Kernel for Index {
    fn build(base: &[f32], dim: usize, metric: Metric, _params: &Params) -> Self {
        /* HOOK: build */
        Index {
            dim,
            metric,
            data: base.to_vec(),
        }
    }

    fn save(&self, out: &mut Vec<u8>) {
        let mut w = ByteWriter::new(out);
        w.u64(self.dim as u64);
        w.u8(self.metric.to_u8());
        w.f32s(&self.data);
    }

    fn load(bytes: &[u8]) -> Self {
        /* HOOK: load */
        let mut r = ByteReader::new(bytes);
        let dim = r.u64() as usize;
        let metric = Metric::from_u8(r.u8());
        Index {
            dim,
            metric,
            data: r.f32s(),
        }
    }

    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {
        let _ = ef;
        /* HOOK: search */
        let mut pool = CandidatePool::new(k);
        for (i, v) in self.data.chunks_exact(self.dim).enumerate() {
            pool.insert(i as u32, self.metric.distance(query, v));
        }
        out.extend(pool.iter().map(|n| n.id));
        /* HOOK: answer */
    }

    /* HOOK: methods */
}

/* HOOK: items */
