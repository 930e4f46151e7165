// A plan's repository passphrase, given to the server by the plan's owner so that the server applies the
// plan's retention on its own S3 destinations (agents may only add there: issue 13's write-only agents).
// Holding it lets the server read that repository: a trust decision the user makes (docs/SECURITY.md).
// It is sealed with the server's key like storage credentials, and write-only through the API: answers
// only say whether one is set; an empty value clears it.
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { Plan } from '../db/schema.ts';
import { open, seal } from '../storage/secret-box.ts';
import { planOfUser } from './plans.ts';

/** The plan's passphrase, if its owner gave one. */
export function planPassphrase(ctx: ServerContext, plan: Plan): string | undefined {
  return plan.passphrase === null ? undefined : open(ctx.secret, plan.passphrase);
}

export async function planPassphraseRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.put<{ Params: { id: string }; Body: { passphrase: string } }>(
    '/api/plans/:id/passphrase',
    {
      schema: {
        summary: "give the server the plan's repository passphrase, so it applies the plan's retention on its S3 destinations; an empty value clears it. Never shown again: answers say only whether one is set",
        body: { type: 'object', required: ['passphrase'], additionalProperties: false, properties: { passphrase: { type: 'string', maxLength: 1024 } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const plan = await planOfUser(ctx, user.id, request.params.id);
      const given = request.body.passphrase;
      await ctx.db
        .updateTable('plans')
        .set({ passphrase: given === '' ? null : seal(ctx.secret, given), updated_at: ctx.now() })
        .where('id', '=', plan.id)
        .where('user_id', '=', user.id)
        .execute();
      return { hasPassphrase: given !== '' };
    },
  );
}
