//! Placeholder until the demo module lands.
pub struct DemoOptions {
    pub tickets: usize,
}
pub async fn load_demo(
    _app: &otklik_app::App,
    _principal: &otklik_domain::permission::Principal,
    _options: &DemoOptions,
) -> anyhow::Result<String> {
    anyhow::bail!("not built yet")
}
