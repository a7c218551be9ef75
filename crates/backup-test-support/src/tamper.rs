//! s3s-fs behind a layer that can misbehave the way real stores do, and that counts the
//! downloads of artifacts, so a test can tell whether `dump` read one back.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the store departs from storing faithfully what it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tampering {
    #[default]
    None,
    /// Flips one bit in this part of every multipart upload before storing it, as a store
    /// with a bad disk or a broken proxy in front of it would; the ETags it answers are
    /// then those of the altered bytes.
    FlipBitInPart(i32),
    /// Stores faithfully but answers ETags that are not MD5s of the parts, in the same
    /// `<32 hex digits>-<parts>` form, as S3 does for objects encrypted with SSE-KMS.
    OpaqueEtags,
}

pub struct TamperingStore {
    inner: s3s_fs::FileSystem,
    tampering: Tampering,
    artifact_downloads: Arc<AtomicUsize>,
}

impl TamperingStore {
    pub fn new(
        inner: s3s_fs::FileSystem,
        tampering: Tampering,
        artifact_downloads: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            inner,
            tampering,
            artifact_downloads,
        }
    }

    fn opaque(&self, e_tag: Option<ETag>) -> Option<ETag> {
        if self.tampering != Tampering::OpaqueEtags {
            return e_tag;
        }
        e_tag.map(|e_tag| {
            let value = e_tag.value();
            let (digest, parts) = value.split_once('-').unwrap_or((value, "1"));
            ETag::Strong(format!(
                "{}-{parts}",
                digest.chars().rev().collect::<String>()
            ))
        })
    }
}

async fn flip_a_bit(body: StreamingBlob) -> S3Result<StreamingBlob> {
    let mut bytes = BytesMut::new();
    let mut body = body;
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(|_| s3s::s3_error!(IncompleteBody))?);
    }
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    Ok(StreamingBlob::from(s3s::Body::from(Bytes::from(bytes))))
}

/// Only what `object_store` sends; anything else is answered NotImplemented. That includes
/// the bulk `DeleteObjects`, which some S3-compatible stores (Google Cloud Storage's XML
/// API among them) do not have: every test here would fail if the backup-operator needed it.
#[async_trait::async_trait]
impl S3 for TamperingStore {
    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        if self.tampering == Tampering::FlipBitInPart(req.input.part_number)
            && let Some(body) = req.input.body.take()
        {
            req.input.body = Some(flip_a_bit(body).await?);
        }
        let mut response = self.inner.upload_part(req).await?;
        response.output.e_tag = self.opaque(response.output.e_tag.take());
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let mut response = self.inner.complete_multipart_upload(req).await?;
        // s3s-fs answers through a future, to keep the connection alive while it works.
        if let Some(future) = response.output.future.take() {
            let mut output = future.await?;
            output.e_tag = self.opaque(output.e_tag.take());
            response.output = output;
        } else {
            response.output.e_tag = self.opaque(response.output.e_tag.take());
        }
        Ok(response)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let mut response = self.inner.head_object(req).await?;
        response.output.e_tag = self.opaque(response.output.e_tag.take());
        Ok(response)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if req.input.key.ends_with("/dump.pgdump") {
            self.artifact_downloads.fetch_add(1, Ordering::SeqCst);
        }
        let mut response = self.inner.get_object(req).await?;
        response.output.e_tag = self.opaque(response.output.e_tag.take());
        Ok(response)
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.inner.create_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }
}
