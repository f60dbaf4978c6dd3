//! STUB
/// stub
pub struct FileBackend;
impl FileBackend { /// stub
 pub fn new(_p: std::path::PathBuf) -> Result<Self, crate::ConfigError> { todo!() } }
#[async_trait::async_trait]
impl crate::SessionBackend for FileBackend {
    async fn load(&self, _: &crate::SessionId, _: Option<std::time::Duration>) -> Result<Option<crate::SessionState>, crate::StoreError> { todo!() }
    async fn create(&self, _: &crate::SessionId, _: &crate::SessionState, _: Option<std::time::Duration>) -> Result<bool, crate::StoreError> { todo!() }
    async fn replace(&self, _: &crate::SessionId, _: &crate::SessionState, _: Option<std::time::Duration>) -> Result<bool, crate::StoreError> { todo!() }
    async fn apply(&self, _: &crate::SessionId, _: &crate::Changes, _: Option<std::time::Duration>) -> Result<bool, crate::StoreError> { todo!() }
    async fn touch(&self, _: &crate::SessionId, _: Option<std::time::Duration>) -> Result<bool, crate::StoreError> { todo!() }
    async fn delete(&self, _: &crate::SessionId) -> Result<bool, crate::StoreError> { todo!() }
    async fn health(&self) -> Vec<crate::BackendHealth> { todo!() }
    fn name(&self) -> &str { "file" }
}
