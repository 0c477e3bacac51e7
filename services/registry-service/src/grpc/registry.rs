//! The `ektp.v1.Registry` service.

use super::Forwarder;
use super::audited::{self, Auditor};
use crate::error::RegistryError;
use crate::ids::JobId;
use crate::store::Store;
use crate::verify_index::VerifyIndex;
use crate::writer::Writer;
use crate::{validate, validate_lifecycle};
use ektp_nik::Nik;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::registry_server::Registry;
use ektp_proto::v1::*;
use ektp_server::AuditContext;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Registry API over the store (reads) and the writer (writes).
pub struct RegistryApi {
    pub store: Store,
    pub writer: Writer,
    pub forwarder: Forwarder,
    pub audit: Auditor,
    pub verify_index: VerifyIndex,
}

#[tonic::async_trait]
impl Registry for RegistryApi {
    async fn record_resident(
        &self,
        request: Request<RecordResidentRequest>,
    ) -> Result<Response<Resident>, Status> {
        let ctx = AuditContext::of(&request, audited::RECORD_RESIDENT)?;
        let nik = request.get_ref().resident.as_ref().map(|r| r.nik.clone());
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    // The writer commits the entry with the record itself.
                    let nik = nik.as_deref().unwrap_or_default();
                    let entry = ctx.entry(nik.trim(), tonic::Code::Ok);
                    let work = async move {
                        let new = validate::record(r)?;
                        match writer.record_audited(new, entry).await {
                            Ok(answer) => Ok(answer.map_err(Status::from)),
                            Err(e) => Err(Status::from(e)),
                        }
                    };
                    self.audit.about_written(ctx, nik, work)
                },
                |ch, r| async move { RegistryClient::new(ch).record_resident(r).await },
            )
            .await
    }

    async fn get_resident(
        &self,
        request: Request<GetResidentRequest>,
    ) -> Result<Response<Resident>, Status> {
        let ctx = AuditContext::of(&request, audited::GET_RESIDENT)?;
        let nik = validate::nik_only("nik", &request.get_ref().nik)?;
        let work = async { Ok(self.store.resident(&nik).await?) };
        let resident = self.audit.about(ctx, nik.as_str(), work).await?;
        Ok(Response::new(resident))
    }

    async fn list_residents(
        &self,
        request: Request<ListResidentsRequest>,
    ) -> Result<Response<ListResidentsResponse>, Status> {
        let ctx = AuditContext::of(&request, audited::LIST_RESIDENTS)?;
        let r = request.into_inner();
        let (size, after) = validate::page(r.page_size, &r.page_token, |t| Nik::parse(t).ok())?;
        let work = async { Ok(self.store.residents(size, after.as_ref()).await?) };
        let niks = |page: &crate::store::Page<Resident>| {
            page.items.iter().map(|r| r.nik.clone()).collect()
        };
        let page = self.audit.about_each(ctx, work, niks).await?;
        Ok(Response::new(ListResidentsResponse {
            residents: page.items,
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn authorize_print(
        &self,
        request: Request<AuthorizePrintRequest>,
    ) -> Result<Response<Resident>, Status> {
        let ctx = AuditContext::of(&request, audited::AUTHORIZE_PRINT)?;
        let nik = request.get_ref().nik.clone();
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let (nik, outcome) = validate::authorize(&r)?;
                        Ok(writer.authorize(nik, outcome, r.reason).await?)
                    };
                    self.audit.about(ctx, &nik, work)
                },
                |ch, r| async move { RegistryClient::new(ch).authorize_print(r).await },
            )
            .await
    }

    async fn request_reprint(
        &self,
        request: Request<RequestReprintRequest>,
    ) -> Result<Response<PrintJob>, Status> {
        let ctx = AuditContext::of(&request, audited::REQUEST_REPRINT)?;
        let nik = request.get_ref().nik.clone();
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work =
                        async move { Ok(writer.reprint(validate_lifecycle::reprint(r)?).await?) };
                    self.audit.about(ctx, &nik, work)
                },
                |ch, r| async move { RegistryClient::new(ch).request_reprint(r).await },
            )
            .await
    }

    async fn get_print_job(
        &self,
        request: Request<GetPrintJobRequest>,
    ) -> Result<Response<PrintJob>, Status> {
        let ctx = AuditContext::of(&request, audited::GET_PRINT_JOB)?;
        let job_id = &request.get_ref().job_id;
        let id = validate::job_id("job_id", job_id)?;
        let work = async { Ok(self.store.job(id).await?) };
        let job = self.audit.about_job(ctx, job_id, work).await?;
        Ok(Response::new(job))
    }

    async fn list_print_jobs(
        &self,
        request: Request<ListPrintJobsRequest>,
    ) -> Result<Response<ListPrintJobsResponse>, Status> {
        let r = request.into_inner();
        let state = PrintJobState::try_from(r.state).map_err(|_| {
            Status::from(RegistryError::Invalid {
                field: "state",
                description: "not a known print job state".into(),
            })
        })?;
        let (size, after) = validate::page(r.page_size, &r.page_token, JobId::parse)?;
        let page = self.store.jobs(state, size, after).await?;
        Ok(Response::new(ListPrintJobsResponse {
            jobs: page.items,
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn cancel_print_job(
        &self,
        request: Request<CancelPrintJobRequest>,
    ) -> Result<Response<PrintJob>, Status> {
        let ctx = AuditContext::of(&request, audited::CANCEL_PRINT_JOB)?;
        let job_id = request.get_ref().job_id.clone();
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let (id, reason) = validate_lifecycle::cancel(&r)?;
                        Ok(writer.cancel(id, reason).await?)
                    };
                    self.audit.about_job(ctx, &job_id, work)
                },
                |ch, r| async move { RegistryClient::new(ch).cancel_print_job(r).await },
            )
            .await
    }

    async fn resolve_in_doubt_job(
        &self,
        request: Request<ResolveInDoubtJobRequest>,
    ) -> Result<Response<PrintJob>, Status> {
        let ctx = AuditContext::of(&request, audited::RESOLVE_IN_DOUBT_JOB)?;
        let job_id = request.get_ref().job_id.clone();
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let (job_id, note) = validate::resolve(&r)?;
                        Ok(writer.resolve(job_id, r.printed, note).await?)
                    };
                    self.audit.about_job(ctx, &job_id, work)
                },
                |ch, r| async move { RegistryClient::new(ch).resolve_in_doubt_job(r).await },
            )
            .await
    }

    async fn record_collection(
        &self,
        request: Request<RecordCollectionRequest>,
    ) -> Result<Response<Resident>, Status> {
        let ctx = AuditContext::of(&request, audited::RECORD_COLLECTION)?;
        let nik = request.get_ref().nik.clone();
        let writer = self.writer.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        Ok(writer.collect(validate_lifecycle::collection(r)?).await?)
                    };
                    self.audit.about(ctx, &nik, work)
                },
                |ch, r| async move { RegistryClient::new(ch).record_collection(r).await },
            )
            .await
    }

    async fn verify_resident(
        &self,
        request: Request<VerifyResidentRequest>,
    ) -> Result<Response<VerifyResidentResponse>, Status> {
        let ctx = AuditContext::of(&request, audited::VERIFY_RESIDENT)?;
        super::verification::verify_one(
            &self.store,
            &self.verify_index,
            &self.audit,
            ctx,
            request.into_inner(),
        )
        .await
        .map(Response::new)
    }

    type VerifyResidentsStream = ServerStream<VerifyResidentResponse>;

    async fn verify_residents(
        &self,
        request: Request<Streaming<VerifyResidentRequest>>,
    ) -> Result<Response<Self::VerifyResidentsStream>, Status> {
        let ctx = AuditContext::of(&request, audited::VERIFY_RESIDENTS)?;
        Ok(Response::new(super::verification::verify_stream(
            self.store.clone(),
            self.verify_index.clone(),
            self.audit.clone(),
            ctx,
            request.into_inner(),
        )))
    }

    async fn get_stats(&self, _: Request<GetStatsRequest>) -> Result<Response<Stats>, Status> {
        Ok(Response::new(self.store.stats().await?))
    }

    type WatchEventsStream = ServerStream<Event>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let cursor = request.into_inner().after_cursor;
        let after = if cursor.is_empty() {
            crate::events::Position::default()
        } else {
            let (revision, name) = ektp_server::parse_cursor(&cursor).ok_or_else(|| {
                Status::from(RegistryError::Invalid {
                    field: "after_cursor",
                    description: "not a cursor this server issued".into(),
                })
            })?;
            crate::events::Position {
                revision,
                name: name.to_owned(),
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(crate::events::stream(
            self.store.client(),
            self.store.keys().clone(),
            after,
            tx,
        ));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
