//! Presets: saved inputs for a graph the user may run, run again with
//! inputs merged over them.

use domain::execution::GraphExecution;
use domain::graph::GraphError;
use domain::preset::{Preset, PresetEvent, PresetPatch};
use domain::quota::QuotaKind;
use eventlog::EventStore;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::execution::{runnable_graph, RunRequest};
use super::quota::Place;
use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, retry_on_conflict, Outcome, UnitOfWork};

/// A preset to save.
#[derive(Debug, Clone)]
pub struct NewPreset {
    /// Where its inputs come from.
    pub source: PresetSource,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Active flag.
    pub is_active: bool,
}

/// What a new preset is made from.
#[derive(Debug, Clone)]
pub enum PresetSource {
    /// Given inputs for a graph version.
    Inputs {
        /// The graph.
        graph_id: Uuid,
        /// Its version.
        graph_version: i32,
        /// Inputs by name.
        inputs: Map<String, Value>,
        /// Credentials by field.
        credentials: Map<String, Value>,
    },
    /// The graph version and inputs of one of the user's runs.
    Run(Uuid),
}

const PRESET: &str = "Preset";

impl<S: EventStore> Commands<S> {
    /// Save a preset for a graph version the user may run. Answers its id.
    pub async fn create_preset(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        preset: NewPreset,
    ) -> Result<(Outcome, Uuid), CommandError> {
        retry_on_conflict(|| self.create_preset_once(ctx, user_id, preset.clone())).await
    }

    async fn create_preset_once(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        preset: NewPreset,
    ) -> Result<(Outcome, Uuid), CommandError> {
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let (graph_id, graph_version, inputs, credentials) = match preset.source {
            PresetSource::Inputs { graph_id, graph_version, inputs, credentials } => {
                (graph_id, graph_version, inputs, credentials)
            }
            PresetSource::Run(execution_id) => {
                let (run, _) = uow.load::<GraphExecution>(execution_id).await?;
                if run.id.is_none() || run.user_id != user_id {
                    return Err(CommandError::NotFound("Graph execution"));
                }
                (run.graph_id, run.graph_version, run.inputs, Map::new())
            }
        };
        let runnable = runnable_graph(&mut uow, user_id, graph_id).await?;
        if !runnable.versions.contains(&graph_version) {
            return Err(GraphError::VersionNotFound(graph_version).into());
        }
        let preset_id = ctx.new_id("preset");
        let created = PresetEvent::PresetCreated {
            user_id,
            graph_id,
            graph_version,
            name: preset.name,
            description: preset.description,
            inputs,
            credentials,
            is_active: preset.is_active,
            webhook_id: None,
            at: self.now(),
        };
        self.move_place(&mut uow, user_id, (QuotaKind::Preset, preset_id), Place::Take).await?;
        uow.record::<Preset>(preset_id, 0, &[created])?;
        Ok((uow.commit().await?, preset_id))
    }

    /// Change one of the user's presets.
    pub async fn update_preset(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        preset_id: Uuid,
        patch: PresetPatch,
    ) -> Result<Outcome, CommandError> {
        let (outcome, _) = decide_on::<Preset, _, _>(&self.store, ctx, preset_id, |preset| {
            preset.update(user_id, patch.clone(), self.now()).ok_or(CommandError::NotFound(PRESET))
        })
        .await?;
        Ok(outcome)
    }

    /// Delete one of the user's presets, and with a triggered preset its
    /// webhook (in the same append; its secret's key is destroyed after).
    pub async fn delete_preset(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        preset_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let (outcome, webhook) = retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (preset, version) = uow.load::<Preset>(preset_id).await?;
            let events = preset.delete(user_id, self.now()).ok_or(CommandError::NotFound(PRESET))?;
            uow.record::<Preset>(preset_id, version, &events)?;
            self.move_place(&mut uow, user_id, (QuotaKind::Preset, preset_id), Place::GiveBack).await?;
            let webhook = self.retire_webhook(&mut uow, &preset).await?;
            Ok((uow.commit().await?, webhook))
        })
        .await?;
        if let Some(webhook_id) = webhook {
            self.shred_webhook_key(webhook_id).await;
        }
        Ok(outcome)
    }

    /// Run one of the user's presets, `inputs` and `credentials` merged
    /// over its own.
    pub async fn execute_preset(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        preset_id: Uuid,
        inputs: Map<String, Value>,
        credentials: Map<String, Value>,
    ) -> Result<(Outcome, GraphExecution), CommandError> {
        let (preset, _) = self.read::<Preset>(preset_id).await?;
        if !preset.is_visible_to(user_id) {
            return Err(CommandError::NotFound(PRESET));
        }
        let request = RunRequest {
            user_id,
            graph_id: preset.graph_id,
            version: Some(preset.graph_version),
            inputs: preset.inputs_with(inputs),
            preset_id: Some(preset_id),
            credentials: preset.credentials.clone().into_iter().chain(credentials).collect(),
        };
        self.execute_graph(ctx, request).await
    }
}
