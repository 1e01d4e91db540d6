//! objd's own routes beside the S3 operations, as the one route `s3s`
//! takes: the admin API ([`AdminRoute`]) and the listing with user
//! metadata ([`MetaList`]). Each request reaches them signed (or
//! anonymous) and is authorized by the route it is for.

use super::admin::AdminRoute;
use super::meta_list::MetaList;
use http::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

pub struct Routes {
    pub admin: AdminRoute,
    pub list: MetaList,
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(&self, m: &Method, uri: &Uri, h: &HeaderMap, e: &mut http::Extensions) -> bool {
        MetaList::is_match(m, uri) || self.admin.is_match(m, uri, h, e)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        if MetaList::is_match(&req.method, &req.uri) {
            // Authorized as it runs: the bucket is a query parameter.
            return Ok(());
        }
        self.admin.check_access(req).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        if MetaList::is_match(&req.method, &req.uri) {
            return self.list.call(req).await;
        }
        self.admin.call(req).await
    }
}
