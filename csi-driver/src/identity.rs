//! The CSI Identity service: the plugin's name and version, what it
//! offers (a controller service, online expansion), and a probe that
//! fails while objd cannot be reached.

use crate::backend::Backend;
use crate::proto::identity_server::Identity;
use crate::proto::plugin_capability::{Service, Type, VolumeExpansion, service, volume_expansion};
use crate::proto::*;
use std::collections::HashMap;
use tonic::{Request, Response, Status};

/// The driver's name, as StorageClasses and the CSIDriver object give it.
pub const DRIVER_NAME: &str = "csi.strata.dev";

#[derive(Debug)]
pub struct IdentityService {
    pub backend: Backend,
    /// Whether this instance serves the controller.
    pub controller: bool,
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _r: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: DRIVER_NAME.into(),
            vendor_version: env!("CARGO_PKG_VERSION").into(),
            manifest: HashMap::new(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _r: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let mut capabilities = vec![PluginCapability {
            r#type: Some(Type::VolumeExpansion(VolumeExpansion {
                r#type: volume_expansion::Type::Online as i32,
            })),
        }];
        if self.controller {
            capabilities.push(PluginCapability {
                r#type: Some(Type::Service(Service {
                    r#type: service::Type::ControllerService as i32,
                })),
            });
        }
        Ok(Response::new(GetPluginCapabilitiesResponse { capabilities }))
    }

    /// Ready when objd answers (any S3 answer, even AccessDenied, shows it
    /// is up); `UNAVAILABLE` when it cannot be reached.
    async fn probe(&self, _r: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let mut anonymous = HashMap::new();
        anonymous.insert("accessKey".to_owned(), "probe".to_owned());
        anonymous.insert("secretKey".to_owned(), "probe".to_owned());
        let client = match &self.backend.credentials {
            Some(_) => self.backend.client(&HashMap::new())?,
            None => self.backend.client(&anonymous)?,
        };
        match client.list_buckets().await {
            Ok(_) => {}
            Err(strata_s3client::Error::S3 { .. }) => {}
            Err(e) => {
                return Err(Status::unavailable(format!(
                    "objd at {}: {e}",
                    self.backend.endpoint
                )));
            }
        }
        Ok(Response::new(ProbeResponse { ready: Some(true) }))
    }
}
