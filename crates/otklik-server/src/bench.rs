//! Placeholder until the benchmark module lands.
pub enum BenchBackend {
    Sqlite,
    Postgres,
}
pub struct BenchOptions {
    pub backends: Vec<BenchBackend>,
    pub concurrency: usize,
    pub create_requests: usize,
    pub list_tickets: usize,
    pub list_requests: usize,
    pub pg_url: String,
    pub keep_data: bool,
}
pub async fn run(_options: BenchOptions) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
